"""The default email backend: store each message in the database (the Outbox page)."""

from django.core.mail.backends.base import BaseEmailBackend


class OutboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        from pursuit.outreach.models import OutboxEmail

        OutboxEmail.objects.bulk_create(
            OutboxEmail(
                from_email=m.from_email,
                to=", ".join(m.recipients()),
                subject=m.subject,
                body=m.body,
                message=m.message().as_string(),
                message_id=(m.extra_headers.get("Message-ID") or "")[:200],
            )
            for m in email_messages
        )
        return len(email_messages)
