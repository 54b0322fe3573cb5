"""Flow actions on a call: :mod:`.base` (the :class:`~.base.CallControl` protocol actions use, the
per-action :class:`~.base.ActionRun`), executors by kind (:mod:`.media`, :mod:`.control`,
:mod:`.connect`) and :mod:`.registry`, the one table of action types (validation and execution).
"""
