"""scikit-learn's estimator checks on a small ContinualActiveClassifier.

The module is ``skcal.models.MLP`` without sizes, so it takes its input width and
number of classes from each check's data. Checks expected to fail, and why:
"""

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from skcal import ContinualActiveClassifier
from skcal.models import MLP

EXPECTED_FAILURES = {
    "check_no_attributes_set_in_init": (
        "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_, and stores "
        "module__*/iterator_* keyword arguments as attributes: skorch's documented design."
    ),
    "check_set_params": (
        "skorch exposes its private _params_to_validate set as a parameter (its name does not end in '_'); "
        "the check sets it to a float and skorch's set_params then fails. skorch's NeuralNetClassifier fails "
        "the same way."
    ),
}


def small_classifier():
    return ContinualActiveClassifier(MLP, module__hidden=(16,), max_epochs=5, lr=0.1, verbose=0, random_state=0)


@parametrize_with_checks([small_classifier()], expected_failed_checks=lambda estimator: EXPECTED_FAILURES)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)
