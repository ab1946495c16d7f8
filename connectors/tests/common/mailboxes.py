"""aiosmtpd handlers for seing's tests, writing every message into a Maildir.

- `Mailbox` refuses any recipient at the domain `inconnu.invalid` with "550 5.1.1", as a mail
  server refuses an address it does not know; other recipients are taken.
- `HoldingMailbox` does the same, and holds its answer to the first message: the message is
  stored, then the final answer to its DATA waits; the handler creates the file `held` in the
  control folder and answers "250" only once the file `release` appears there. A client that
  dies meanwhile never learns that the message was taken. Later messages are answered at once.

Used as `python3 -m aiosmtpd -c mailboxes.Mailbox MAILDIR` or
`python3 -m aiosmtpd -c mailboxes.HoldingMailbox MAILDIR CONTROL`.
"""

import asyncio
import os

from aiosmtpd import handlers


class Mailbox(handlers.Mailbox):
    """A Maildir that refuses the recipients at `inconnu.invalid`."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().endswith("@inconnu.invalid"):
            return "550 5.1.1 <%s>: adresse inconnue" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"


class HoldingMailbox(Mailbox):
    """A Maildir holding its answer to the first message until `CONTROL/release` exists."""

    def __init__(self, mail_dir, control):
        super().__init__(mail_dir)
        self.control = control
        self.first = True

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 2:
            parser.error("HoldingMailbox takes the Maildir and the control folder")
        return cls(*args)

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        if self.first:
            self.first = False
            open(os.path.join(self.control, "held"), "w").close()
            while not os.path.exists(os.path.join(self.control, "release")):
                await asyncio.sleep(0.02)
        return answer
