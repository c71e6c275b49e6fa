"""What every role shares: serve messages until STOP, and report a failure instead of dying."""

from __future__ import annotations

import logging

from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.transport import Transport
from mpsl.tasks import COORDINATOR

log = logging.getLogger(__name__)


class Stopped(Exception):
    """STOP came while a role waited in the middle of its work (another role failed)."""


class Worker:
    """A role: a state machine over the messages of its inbox.

    ``serve`` answers messages until STOP. A failure while handling one is sent to the coordinator
    as an ERROR naming the role (and round, data owner, batch where they apply), and the role
    keeps serving: the coordinator decides whether the run goes on.
    """

    name: str
    transport: Transport
    coordinator: str = COORDINATOR

    def serve(self) -> None:
        """Handle messages until STOP."""
        while True:
            msg = self._next()
            if msg.kind is Kind.STOP:
                return
            try:
                self._handle(msg)
            except Stopped:
                return
            except Exception as exc:  # a role must report, not die silently
                log.exception("%s failed", self.name)
                text = f"{self._where(msg)}: {type(exc).__name__}: {exc}"
                self.transport.send(self.coordinator, Message(Kind.ERROR, self.name, text=text))

    def _next(self) -> Message:
        """The next message to handle."""
        return self.transport.recv(self.name)

    def _handle(self, msg: Message) -> None:
        """Act on one message."""
        raise NotImplementedError

    def _where(self, msg: Message) -> str:
        """Who failed on ``msg``, for the coordinator's error."""
        return f"{self.name}, round {msg.round}"

    def _await(self) -> Message:
        """The next message in the middle of work; Stopped if it is STOP."""
        msg = self.transport.recv(self.name)
        if msg.kind is Kind.STOP:
            raise Stopped
        return msg
