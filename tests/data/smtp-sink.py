"""An SMTP server for the tests: aiosmtpd (Debian's python3-aiosmtpd) on 127.0.0.1, on the port
given (0 picks one). It prints `port N` once it listens, then one JSON line for each message it
accepts: the envelope, the headers and the text as a reader's mail program decodes them, and the
message as it came over the wire."""

import asyncio
import email
import email.policy
import json
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        print(
            json.dumps(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "headers": [[name, str(value)] for name, value in message.items()],
                    "text": body.get_content() if body is not None else "",
                    "raw": raw.decode("utf-8", "replace"),
                }
            ),
            flush=True,
        )
        return "250 OK"


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(), hostname="sink.test"), "127.0.0.1", port
    )
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
