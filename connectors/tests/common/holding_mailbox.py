"""An aiosmtpd handler for seing's tests: a Maildir that holds its answer to the first message.

The first message is stored in the Maildir, then the final answer to its DATA waits: the
handler creates the file `held` in the control folder and answers "250" only once the file
`release` appears there. A client that dies meanwhile never learns that the message was
taken. Later messages are stored and answered at once.

Used as `python3 -m aiosmtpd -c holding_mailbox.HoldingMailbox MAILDIR CONTROL`.
"""

import asyncio
import os

from aiosmtpd.handlers import Mailbox


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
