"""What the commands that talk (chat, voice, serve) share: the config their options make."""

from __future__ import annotations

import argparse
from pathlib import Path

from companion.config import Config, load_config


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file(s), overridden by the model and sampling options given."""
    return load_config(
        Path(args.config) if args.config else None,
        user=args.user,
        model=args.model,
        persona=args.persona,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        seed=args.seed,
        threads=args.threads,
    )
