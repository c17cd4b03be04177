"""skcal: Continual Active Learning for scikit-learn and skorch.

Train an active learner on the newly labelled points with replay from the
labelled history instead of retraining from scratch every round.
"""

from ._version import __version__
from .estimator import ContinualActiveClassifier
from .history import LabelledHistory, ReplayBatch
from .modal import ContinualActiveLearner
from .replay import REPLAY_STRATEGIES, ReplayStrategy
from .round import Round
from .simulation import ActiveLearningSimulator

__all__ = [
    "REPLAY_STRATEGIES",
    "ActiveLearningSimulator",
    "ContinualActiveClassifier",
    "ContinualActiveLearner",
    "LabelledHistory",
    "ReplayBatch",
    "ReplayStrategy",
    "Round",
    "__version__",
]
