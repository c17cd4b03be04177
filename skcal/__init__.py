"""skcal: Continual Active Learning for scikit-learn and skorch.

Train an active learner on the newly labelled points with replay from the
labelled history instead of retraining from scratch every round.
"""

from .estimator import ContinualActiveClassifier
from .history import LabelledHistory, ReplayBatch
from .replay import REPLAY_STRATEGIES, ReplayStrategy

__version__ = "0.1.0"

__all__ = [
    "REPLAY_STRATEGIES",
    "ContinualActiveClassifier",
    "LabelledHistory",
    "ReplayBatch",
    "ReplayStrategy",
    "__version__",
]
