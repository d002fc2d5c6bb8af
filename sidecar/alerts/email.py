"""E-mail alerts over SMTP (stdlib smtplib): STARTTLS, implicit TLS or plain; AUTH when a
user is set (config.load refuses a user without TLS). Every network step is bounded by
FORMRELAY_ALERT_TIMEOUT_SECONDS."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sidecar.alerts.channel import ChannelError
from sidecar.alerts.render import Rendered


@dataclass
class EmailChannel:
    host: str
    port: int
    security: str  # starttls | tls | none
    sender: str
    recipients: tuple[str, ...]
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 10.0
    context: ssl.SSLContext | None = None  # None: the system's CAs (honours SSL_CERT_FILE)
    name: str = "email"

    def message(self, rendered: Rendered, delivery_id: str) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = rendered.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(idstring=f"formrelay-alert-{delivery_id}")
        msg["X-FormRelay-Event"] = rendered.event
        msg.set_content(rendered.text)
        return msg

    def send(self, message: Rendered, delivery_id: str) -> None:
        context = self.context or ssl.create_default_context()
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                      context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=context)
                if self.user:
                    smtp.login(self.user, self.password)
                # A partial refusal still reached someone: sent (smtplib raises when all refuse).
                smtp.send_message(self.message(message, delivery_id))
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(f"SMTP {exc.smtp_code} ({type(exc).__name__})") from None
        except smtplib.SMTPRecipientsRefused:
            raise ChannelError("SMTP every recipient refused") from None
        except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise ChannelError(f"SMTP {type(exc).__name__}") from None
