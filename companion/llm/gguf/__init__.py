"""The GGUF-native engine: runs a GGUF file's quantized blocks in place, without torch.

``reader`` maps the file, ``tokenizer`` builds its tokenizer and chat template,
``model`` runs the forward pass on the native kernels of ``kernels``, and
``backend`` is the LLM backend over it.
"""
