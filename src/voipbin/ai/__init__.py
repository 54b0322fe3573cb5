"""The managed AI (``/v1.0/ais``, ``/v1.0/aicalls``, ``/v1.0/aimessages``; the ``ai_talk`` action).

* :mod:`~voipbin.ai.records` — stored AI configurations (``AIManagerAI``), each field validated;
  the provider key encrypted at rest (:mod:`~voipbin.ai.crypto`) and never returned.
* :mod:`~voipbin.ai.service` — :class:`~voipbin.ai.service.AiService`: resolving an ``ai_talk`` option
  to an :class:`~voipbin.ai.service.AiConfig`, aicalls (``AIManagerAIcall``, lifecycle in
  :mod:`~voipbin.ai.status`) and their messages (``AIManagerMessage``), the live conversations of
  this process (terminate, inject).
* :mod:`~voipbin.ai.options` — the ``ai_talk`` option's shape check (flow validation; no store).
* :mod:`~voipbin.ai.serialize` — rows in the spec's shapes (event bodies and API responses).
* :mod:`~voipbin.ai.talk` / :mod:`~voipbin.ai.agent` / :mod:`~voipbin.ai.tools` — the live turn loop.
"""
