"""Jobs that outlive the stream: ``SubmitGenerate`` and ``google.longrunning.Operations``.

::

    SubmitGenerate ─► JobOperations.submit ─► JobStore ◄── JobRunner workers
                                              (SQLite      │ Orchestrator.generate,
    WatchOperation, Get, List, Wait, Cancel ◄─ or Redis)   └─ events recorded; webhooks

| module | holds |
|---|---|
| ``lifecycle`` | submit, get, list, watch, wait, cancel, delete, scoped to the caller |
| ``runner`` | workers running jobs through the orchestrator, recording their events |
| ``progress`` | events folded into the operation's metadata and response |
| ``store`` | the store interface; ``sqlite_store`` and ``redis_store`` implement it |
| ``webhooks`` | Standard Webhooks deliveries, allow-list, retries |
| ``servicer`` | the gRPC servicers; ``app`` the wiring; ``settings`` the settings |
"""
