"""Personas as data, and the companion's evolving state (pure functions).

- ``load_persona`` / ``list_personas``: bundled personas, the user's own, card files;
- ``import_card`` / ``export_card`` / ``persona_to_toml``: Character Card V1/V2/V3 (JSON, PNG);
- ``system_text`` / ``examples`` / ``greeting``: persona text filled in for a prompt;
- ``initial_state`` / ``update_state`` / ``render_state``: mood and relationship over time.
"""

from companion.persona.affect import appraise
from companion.persona.card import (
    card_to_png,
    export_card,
    import_card,
    persona_from_card,
)
from companion.persona.describe import (
    describe_state,
    mood_style,
    mood_words,
    render_state,
)
from companion.persona.loader import (
    DEFAULT_PERSONA,
    list_personas,
    load_persona,
    load_persona_file,
    parse_persona_toml,
)
from companion.persona.model import Persona, SpeechStyle
from companion.persona.render import (
    DEFAULT_USER_NAME,
    examples,
    fill,
    greeting,
    post_history_text,
    system_text,
)
from companion.persona.state import (
    MOOD_HALF_LIFE,
    begin_session,
    decay,
    initial_state,
    state_from_dict,
    state_to_dict,
    update_state,
)
from companion.persona.tomlfile import persona_slug, persona_to_toml, save_persona_toml

__all__ = [
    "DEFAULT_PERSONA",
    "DEFAULT_USER_NAME",
    "MOOD_HALF_LIFE",
    "Persona",
    "SpeechStyle",
    "appraise",
    "begin_session",
    "card_to_png",
    "decay",
    "describe_state",
    "examples",
    "export_card",
    "fill",
    "greeting",
    "import_card",
    "initial_state",
    "list_personas",
    "load_persona",
    "load_persona_file",
    "mood_style",
    "mood_words",
    "parse_persona_toml",
    "persona_from_card",
    "persona_slug",
    "persona_to_toml",
    "post_history_text",
    "render_state",
    "save_persona_toml",
    "state_from_dict",
    "state_to_dict",
    "system_text",
    "update_state",
]
