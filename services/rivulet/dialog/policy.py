"""The dialog policy: frame-based slot filling, confirmation, context carry-over, and the
conversational moves every skill shares (cancel, help, repeat, yes/no, greetings, fallback).

A frame is one task (an intent and its slots). The policy fills it from the NLU's slots, asks for
the first missing required slot, asks the user to confirm actions that need it, and only then hands
the complete frame to its skill. The last completed frame becomes the context that a follow-up such
as "what about tomorrow?" or "and in Paris?" changes one slot of. Everything lives in the session
state passed in, so the policy itself holds no state between turns.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from rivulet.dialog import hints
from rivulet.dialog.parse import parse_date
from rivulet.dialog.skills.base import Outcome, SkillRegistry, SlotSpec, TurnContext
from rivulet.dialog.state import Frame, SessionState
from rivulet.dialog.understanding import NluResult, is_bare_answer, read_slots

SOCIAL = {
    "Greet": "Hello! How can I help?",
    "Goodbye": "Goodbye!",
    "Thanks": "You're welcome.",
}
_REPLIES = tomllib.loads(resources.files("rivulet.dialog").joinpath("data/replies.toml").read_text())
HELP = _REPLIES["help"].format(capabilities=_REPLIES["capabilities"])
OUT_OF_SCOPE = _REPLIES["out_of_scope"].format(capabilities=_REPLIES["capabilities"])
NO_INPUT = _REPLIES["no_input"]
FALLBACK = "Sorry, I didn't understand that. You can say help to hear what I can do."
CARRY = re.compile(
    r"^(?:(?:and\s+)?(?:what|how)\s+about|and(?:\s+for|\s+in)?|what if|same (?:for|in))\b\s*", re.I
)
MAX_ASKS = 3
SWITCH_SCORE = 0.9


@dataclass
class PolicyReply:
    text: str
    action: str
    action_slots: dict[str, str] = field(default_factory=dict)
    expecting_slot: str = ""
    expecting_confirmation: bool = False
    low_confidence: bool = False
    repeat: bool = False  # the reply repeats the last one (last_reply is kept)


class Policy:
    def __init__(
        self, registry: SkillRegistry, threshold: float, out_of_scope_intent: str = "OutOfScope"
    ) -> None:
        self.registry = registry
        self.threshold = threshold
        self.out_of_scope_intent = out_of_scope_intent

    # -- entry point -----------------------------------------------------------------------------
    async def respond(self, text: str, nlu: NluResult, state: SessionState, ctx: TurnContext) -> PolicyReply:
        confident = nlu.score >= self.threshold
        intent = nlu.intent if confident else ""
        frame = state.frame
        if intent == "Repeat":
            said = state.last_reply or "I haven't said anything yet."
            return PolicyReply(said, "repeat", repeat=True, **self._expecting(frame))
        if intent == "Cancel":
            state.frame = None
            if frame:
                return PolicyReply("Okay, I've cancelled that.", "cancelled", {"intent": frame.intent})
            return PolicyReply("Okay.", "cancelled")
        if intent == "Help":
            return self._help(frame)
        if intent in SOCIAL and not frame and self._is_follow_up(text, state):
            intent = ""  # "what about tomorrow?" after an answer: not a farewell, whatever the NLU says
        if intent in SOCIAL:
            if intent == "Goodbye":
                state.frame = None
            question = self._question(frame, ctx) if state.frame else ""
            return PolicyReply(
                f"{SOCIAL[intent]} {question}".strip(),
                f"social.{intent.lower()}",
                **self._expecting(state.frame),
            )
        if frame and frame.awaiting_confirmation:
            reply = await self._on_confirmation(text, nlu, intent, state, ctx)
            if reply:
                return reply
        elif frame and frame.awaiting_slot:
            reply = await self._on_slot_answer(text, nlu, state, ctx)
            if reply:
                return reply
        return await self._new_request(text, nlu, confident, state, ctx)

    def hints(self, state: SessionState | None) -> tuple[str, ...]:
        """What the user is likely to say next (see `rivulet.dialog.hints`): the answers to the open
        question, or follow-ups on the last answer; () when nothing narrows it down."""
        frame = state.frame if state else None
        if frame and frame.awaiting_confirmation:
            return hints.CONFIRM
        if frame and frame.awaiting_slot and self.registry.get(frame.intent):
            return (*self._spec(frame.intent, frame.awaiting_slot).hints, "cancel")
        context = state.context if state else None
        found = self.registry.get(context.intent) if context else None
        if found and (found[1].date_slot or found[1].place_slot):
            return hints.FOLLOW_UP
        return ()

    async def hints_with_known(self, state: SessionState, ctx: TurnContext) -> tuple[str, ...]:
        """`hints`, plus what the session's own data names for an open question (the items of the
        list the user is removing from: "What should I remove?" is answered with one of them)."""
        fixed = self.hints(state)
        frame = state.frame
        found = self.registry.get(frame.intent) if frame and frame.awaiting_slot else None
        if not found:
            return fixed
        known = await found[0].known_answers(frame.intent, frame.awaiting_slot, frame.slots, ctx)
        return (*fixed, *(k for k in known if k not in fixed))

    # -- conversational moves ----------------------------------------------------------------------
    def reprompt(self, state: SessionState | None, ctx: TurnContext) -> PolicyReply:
        """The reply to a spoken turn that gave no words: that it was not caught, and the open
        question again. It reads the state and changes nothing (the turn is not one)."""
        frame = state.frame if state else None
        question = self._question(frame, ctx) or _REPLIES["no_input_open"]
        return PolicyReply(f"{NO_INPUT} {question}", "no_input", **self._expecting(frame))

    def _help(self, frame: Frame | None) -> PolicyReply:
        if not frame:
            return PolicyReply(HELP, "help")
        _, spec = self.registry.get(frame.intent)
        doing = spec.describe or "working on your request"
        if frame.awaiting_confirmation:
            ask = "Say yes to go ahead or no to stop."
        else:
            ask = f"{self._spec(frame.intent, frame.awaiting_slot).prompt} Or say cancel to stop."
        return PolicyReply(f"I'm {doing}. {ask}", "help", **self._expecting(frame))

    def _expecting(self, frame: Frame | None) -> dict:
        if not frame:
            return {}
        return {"expecting_slot": frame.awaiting_slot, "expecting_confirmation": frame.awaiting_confirmation}

    def _question(self, frame: Frame | None, ctx: TurnContext) -> str:
        if not frame:
            return ""
        if frame.awaiting_confirmation:
            _, spec = self.registry.get(frame.intent)
            return spec.confirm(frame.slots, ctx)
        return self._spec(frame.intent, frame.awaiting_slot).prompt

    def _spec(self, intent: str, slot: str) -> SlotSpec:
        _, spec = self.registry.get(intent)
        return next(s for s in [*spec.required, *spec.optional] if s.name == slot)

    # -- pending confirmation --------------------------------------------------------------------
    async def _on_confirmation(
        self, text: str, nlu: NluResult, intent: str, state: SessionState, ctx: TurnContext
    ) -> PolicyReply | None:
        frame = state.frame
        _, spec = self.registry.get(frame.intent)
        changes = read_slots(spec, nlu, ctx, text) if intent not in ("Affirm",) else {}
        if intent == "Affirm":
            frame.awaiting_confirmation = False
            frame.slots["_confirmed"] = "yes"
            return await self._progress(state, ctx)
        if changes:
            frame.slots.update(changes)
            return await self._progress(state, ctx, reconfirm=True)
        if intent == "Deny":
            state.frame = None
            return PolicyReply("Okay, I won't do that.", "declined", {"intent": frame.intent})
        if self._is_switch(text, nlu, frame):
            return None
        frame.asked += 1
        if frame.asked >= MAX_ASKS:
            state.frame = None
            return PolicyReply("Let's leave that for now.", "abandoned", {"intent": frame.intent})
        return PolicyReply(
            f"Please say yes or no. {spec.confirm(frame.slots, ctx)}", "confirm", expecting_confirmation=True
        )

    # -- pending slot question ---------------------------------------------------------------------
    async def _on_slot_answer(
        self, text: str, nlu: NluResult, state: SessionState, ctx: TurnContext
    ) -> PolicyReply | None:
        frame = state.frame
        _, spec = self.registry.get(frame.intent)
        found = read_slots(spec, nlu, ctx, text)
        if found:
            frame.slots.update(found)
            return await self._progress(state, ctx)
        if self._is_switch(text, nlu, frame):
            return None
        awaited = self._spec(frame.intent, frame.awaiting_slot)
        value = awaited.parse(text, ctx) if awaited.parse else (text.strip(" .,!?").lower() or None)
        if value and awaited.free_text:
            frame.slots[awaited.name] = value
            return await self._progress(state, ctx)
        frame.asked += 1
        if frame.asked >= MAX_ASKS:
            state.frame = None
            return PolicyReply(
                "Sorry, I still didn't get that. Let's leave it for now.",
                "abandoned",
                {"intent": frame.intent},
            )
        return PolicyReply(f"{NO_INPUT} {awaited.prompt}", "ask_slot", expecting_slot=awaited.name)

    def _is_follow_up(self, text: str, state: SessionState) -> bool:
        """An explicit follow-up ("what about …", "and in …") on an answered task."""
        match = CARRY.match(text.strip())
        return bool(match and match.group(0).strip().lower() != "and" and state.context)

    def _is_switch(self, text: str, nlu: NluResult, frame: Frame) -> bool:
        """A confident, full request for a different task abandons the open frame; a bare answer
        (`is_bare_answer`: "tonight at eight" to "For when?") never does."""
        return (
            nlu.intent != frame.intent
            and nlu.score >= SWITCH_SCORE
            and self.registry.get(nlu.intent) is not None
            and len(text.split()) >= 3
            and not is_bare_answer(text, nlu)
        )

    # -- a new request (or a follow-up on the context) ---------------------------------------------
    async def _new_request(
        self, text: str, nlu: NluResult, confident: bool, state: SessionState, ctx: TurnContext
    ) -> PolicyReply:
        carried = self._carry_over(text, nlu, confident, state, ctx)
        if carried:
            state.frame = carried
            return await self._progress(state, ctx)
        if nlu.intent == self.out_of_scope_intent:  # whatever its score: the NLU's decision not to act
            return PolicyReply(OUT_OF_SCOPE, "out_of_scope")
        if not confident:
            return PolicyReply(FALLBACK, "fallback", low_confidence=True)
        if nlu.intent in ("Affirm", "Deny"):
            return PolicyReply("Okay." if nlu.intent == "Affirm" else "Alright.", "ack")
        found = self.registry.get(nlu.intent)
        if not found:
            return PolicyReply(OUT_OF_SCOPE, "unsupported", {"intent": nlu.intent})
        _, spec = found
        state.frame = Frame(intent=nlu.intent, slots=read_slots(spec, nlu, ctx, text))
        return await self._progress(state, ctx)

    def _carry_over(
        self, text: str, nlu: NluResult, confident: bool, state: SessionState, ctx: TurnContext
    ) -> Frame | None:
        """ "what about tomorrow?" after a weather answer: the context's task with one slot changed."""
        context = state.context
        if not context or not self.registry.get(context.intent):
            return None
        match = CARRY.match(text.strip())
        rest = text.strip()[match.end() :].strip(" ?.!,") if match else text.strip(" ?.!,")
        is_date = parse_date(rest, ctx.today) is not None
        short_fragment = len(rest.split()) <= 3 and is_date and (not confident or nlu.intent == "GetDate")
        if not match and not short_fragment:
            return None
        _, spec = self.registry.get(context.intent)
        slots = {k: v for k, v in context.slots.items() if not k.startswith("_")}
        changes = read_slots(spec, nlu, ctx, text)
        if not changes and rest:
            if is_date and spec.date_slot:
                changes[spec.date_slot] = rest.lower()
            elif spec.place_slot:
                place = self._spec(context.intent, spec.place_slot)
                value = place.parse(rest, ctx) if place.parse else rest.lower()
                if value:
                    changes[spec.place_slot] = value
        if not changes:
            return None
        slots.update(changes)
        return Frame(intent=context.intent, slots=slots)

    # -- moving a frame forward --------------------------------------------------------------------
    async def _progress(self, state: SessionState, ctx: TurnContext, reconfirm: bool = False) -> PolicyReply:
        frame = state.frame
        skill, spec = self.registry.get(frame.intent)
        for slot in spec.optional:
            if slot.default is not None and not frame.slots.get(slot.name):
                frame.slots[slot.name] = slot.default
        missing = next((s for s in spec.required if not frame.slots.get(s.name)), None)
        if missing:
            frame.asked = frame.asked + 1 if frame.awaiting_slot == missing.name else 0
            frame.awaiting_slot, frame.awaiting_confirmation = missing.name, False
            return PolicyReply(
                missing.prompt, "ask_slot", {"intent": frame.intent}, expecting_slot=missing.name
            )
        frame.awaiting_slot = ""
        if spec.confirm and (reconfirm or frame.slots.get("_confirmed") != "yes"):
            frame.slots.pop("_confirmed", None)
            frame.awaiting_confirmation, frame.asked = True, 0
            return PolicyReply(
                spec.confirm(frame.slots, ctx),
                "confirm",
                {"intent": frame.intent},
                expecting_confirmation=True,
            )
        slots = {k: v for k, v in frame.slots.items() if not k.startswith("_")}
        outcome: Outcome = await skill.act(frame.intent, slots, ctx)
        if not outcome.done:
            frame.slots.pop(outcome.retry_slot, None)
            frame.awaiting_slot, frame.awaiting_confirmation = outcome.retry_slot, False
            return PolicyReply(outcome.text, outcome.action, outcome.slots, expecting_slot=outcome.retry_slot)
        state.frame = None
        state.context = Frame(intent=frame.intent, slots=slots)
        return PolicyReply(outcome.text, outcome.action, {"intent": frame.intent, **outcome.slots})
