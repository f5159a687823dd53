"""Admin for the worker's jobs (with "retry now") and staff notifications, both read-only."""

from __future__ import annotations

from django.contrib import admin, messages

from pursuit.lib import clock
from pursuit.org.admin import PursuitAdmin, ReadOnlyAdmin, StaffFilter, admin_link, when
from pursuit.work.models import Job, Notification


class KindFilter(admin.SimpleListFilter):
    """The kinds that exist in the table (job kinds are free strings, not choices)."""

    title = "kind"
    parameter_name = "kind"
    model = Job

    def lookups(self, request, model_admin):
        kinds = self.model.objects.order_by("kind").values_list("kind", flat=True).distinct()
        return [(k, k) for k in kinds]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


class NotificationKindFilter(KindFilter):
    model = Notification


@admin.register(Job)
class JobAdmin(PursuitAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        when("due_at", "Due"),
        "attempts",
        "error_short",
        "lead_link",
        when("done_at", "Done"),
    ]
    list_filter = ["status", KindFilter]
    search_fields = ["=id", "key", "last_error", "=lead__id"]
    search_help_text = "Job number, key, words of the last error, or the lead number."
    list_select_related = ["lead__customer"]
    ordering = ["-due_at", "-id"]
    date_hierarchy = "due_at"
    actions = ["retry_now"]
    fields = [
        "kind",
        "status",
        "lead_link",
        "key",
        "data",
        "due_at",
        "priority",
        "attempts",
        "last_error",
        "claimed_by",
        "claimed_until",
        "created_at",
        "done_at",
    ]
    readonly_fields = fields

    # Jobs are scheduled by the services and run by the worker; here they are watched.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("work.change_job")

    @admin.display(description="Last error")
    def error_short(self, obj) -> str:
        return obj.last_error if len(obj.last_error) <= 120 else obj.last_error[:120] + "…"

    @admin.display(description="Lead", ordering="lead")
    def lead_link(self, obj) -> str:
        return admin_link(obj.lead) if obj.lead_id else "—"

    @admin.action(description="Retry the selected failed jobs now", permissions=["retry"])
    def retry_now(self, request, queryset):
        # Pending and due now: the worker claims them on its next poll. Attempts are kept (they
        # are history): a job that fails again after its last retry is marked failed at once.
        failed = queryset.filter(status=Job.Status.FAILED)
        count = failed.update(
            status=Job.Status.PENDING, due_at=clock.now(), claimed_until=None, claimed_by="", done_at=None
        )
        skipped = queryset.count() - count
        if count:
            self.message_user(
                request, f"{count} job(s) will run on the worker's next poll.", messages.SUCCESS
            )
        if skipped:
            self.message_user(
                request,
                f"{skipped} selected job(s) had not failed and were left as they are.",
                messages.WARNING,
            )


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = [when("created_at", "When"), "user", "kind", "text", "lead_link", when("read_at", "Read")]
    list_filter = [NotificationKindFilter, ("user", StaffFilter), ("read_at", admin.EmptyFieldListFilter)]
    search_fields = ["text", "user__username", "user__last_name"]
    list_select_related = ["user", "lead__customer"]
    date_hierarchy = "created_at"
    fields = ["user", "kind", "text", "lead_link", "created_at", "read_at"]
    readonly_fields = fields

    @admin.display(description="Lead", ordering="lead")
    def lead_link(self, obj) -> str:
        return admin_link(obj.lead) if obj.lead_id else "—"
