"""Model serving: the KServe control plane (``kserve.KServe``), per model an endpoint (``endpoint.ModelEndpoint``),
how its pods read their model (``model_access``), and the inference engines (``engines``).

Nothing is imported here: ``config.serving`` validates endpoints with ``engines``, which must load without Pulumi.
"""
