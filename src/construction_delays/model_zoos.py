"""The default model zoo of each task, as the ``models:`` block of params.yaml.

One source for the two places that switch a project's task: `mlops data adopt` (a dataset whose
target needs the other task) and the cookiecutter hook that generates a regression project (it
loads this file by path, so: standard library only, Python 3.9+). The ``classification`` block is
exactly the one params.yaml ships with; a test keeps the two equal.
"""

MODEL_ZOOS = {
    "classification": """\
models:
  logistic_regression:
    estimator: sklearn.linear_model.LogisticRegression
    params: {max_iter: 1000}
    grid:
      C: [0.1, 1.0, 10.0]
  decision_tree:
    estimator: sklearn.tree.DecisionTreeClassifier
    params: {random_state: 42}
    grid:
      max_depth: [4, 8, 16]
      min_samples_leaf: [1, 10]
  random_forest:
    estimator: sklearn.ensemble.RandomForestClassifier
    # n_jobs 1: the CV fits already run one per core; the final refit uses every core anyway
    params: {n_estimators: 200, random_state: 42, n_jobs: 1}
    grid:
      max_depth: [8, 16]
      min_samples_leaf: [1, 5]
  gradient_boosting:
    estimator: sklearn.ensemble.HistGradientBoostingClassifier
    params: {random_state: 42}
    grid:
      learning_rate: [0.05, 0.1]
      max_depth: [3, null]
  knn:
    enabled: false
    estimator: sklearn.neighbors.KNeighborsClassifier
    grid:
      n_neighbors: [5, 15, 31]
""",
    "regression": """\
models:
  ridge:
    estimator: sklearn.linear_model.Ridge
    grid:
      alpha: [0.1, 1.0, 10.0]
  decision_tree:
    estimator: sklearn.tree.DecisionTreeRegressor
    params: {random_state: 42}
    grid:
      max_depth: [4, 8, 16]
      min_samples_leaf: [1, 10]
  random_forest:
    estimator: sklearn.ensemble.RandomForestRegressor
    params: {n_estimators: 200, random_state: 42, n_jobs: 1}
    grid:
      max_depth: [8, 16]
      min_samples_leaf: [1, 5]
  gradient_boosting:
    estimator: sklearn.ensemble.HistGradientBoostingRegressor
    params: {random_state: 42}
    grid:
      learning_rate: [0.05, 0.1]
      max_depth: [3, null]
  knn:
    enabled: false
    estimator: sklearn.neighbors.KNeighborsRegressor
    grid:
      n_neighbors: [5, 15, 31]
""",
}
