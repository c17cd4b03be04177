"""``skcal serve``: skcal as a Label Studio ML backend, learning in CAL rounds as annotations arrive.

Modules, by concern:

- :mod:`~skcal.serve.labelconfig`: the labelling config's ``Choices`` control and classes;
- :mod:`~skcal.serve.protocol`: request payloads in, predictions out, :class:`ProtocolError`;
- :mod:`~skcal.serve.journal`: the durable journal of acknowledged label events;
- :mod:`~skcal.serve.campaign`: annotations behind labelled points, rounds on copies;
- :mod:`~skcal.serve.store`: atomic commits, and corrupt ones moved aside;
- :mod:`~skcal.serve.statedir`: one backend per state folder, and a fingerprint of its state;
- :mod:`~skcal.serve.reconcile`: the annotation changes Label Studio has that the backend missed;
- :mod:`~skcal.serve.model`: the factory's pipeline, and prediction scores;
- :mod:`~skcal.serve.factories`: built-in text and image factories, ``module:function`` factories;
- :mod:`~skcal.serve.lanes`: short calls before the next batch of long ones;
- :mod:`~skcal.serve.predictor`: ``/predict`` in bounded batches;
- :mod:`~skcal.serve.media`, :mod:`~skcal.serve.labelstudio`: images and Label Studio's REST API;
- :mod:`~skcal.serve.worker`: the background training worker, with back-off;
- :mod:`~skcal.serve.faults`, :mod:`~skcal.serve.health`: storage faults named, and ``/health``;
- :mod:`~skcal.serve.backend`: the protocol handlers; :mod:`~skcal.serve.app`: the HTTP app;
- :mod:`~skcal.serve.connections`: slow and abusive clients; :mod:`~skcal.serve.memory`: the allocator;
- :mod:`~skcal.serve.server`: running it (warm-up first, graceful shutdown).

Embedding it in a program::

    from skcal.serve import LabelStudioBackend, create_app
    backend = LabelStudioBackend("skcal.serve.factories:text_classifier", "state/")   # or a callable
    app = create_app(backend)          # an ASGI app: uvicorn.run(app, port=9090), or mount it

See docs/labelstudio.md.
"""

from .app import Credentials, create_app
from .backend import LabelStudioBackend
from .labelconfig import LabellingConfig, LabellingConfigError, parse_labelling_config
from .protocol import ProtocolError
from .server import make_backend, serve

__all__ = [
    "Credentials",
    "LabelStudioBackend",
    "LabellingConfig",
    "LabellingConfigError",
    "ProtocolError",
    "create_app",
    "make_backend",
    "parse_labelling_config",
    "serve",
]
