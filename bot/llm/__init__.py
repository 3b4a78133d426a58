"""The optional language model behind the `LanguageModel` port (an OpenAI-compatible server).

Public comments reach the model only sanitised and fenced as untrusted data; whatever it answers
is validated against a strict schema and cleaned by our code before a person sees it privately.
"""
