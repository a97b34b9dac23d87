"""Frontier-LLM labeling: prompt templates and the OpenAI backends (Batch API and chat).

``trellis.labels`` picks the backend from the config (``labels.backend``) and writes the labeled
dataset; this package builds the requests and gets answers. The OpenAI modules are imported only
when an OpenAI backend is chosen, so the offline demo never loads the SDK.
"""
