"""Voice: speaking (TTS), listening (VAD + STT), and the voice conversation loop.

Nothing here is imported by ``import companion``; numpy and the speech
libraries are loaded only when voice is used.
"""
