"""Staff interface. Money is read-only here: every change goes through a service."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from kernel.db import EstimatedCountPaginator

from . import selectors, services
from .forms import AdjustForm, ForgiveDebtForm
from .gateways.registry import GATEWAYS
from .models import Affiliate, BonusTier, Entry, GatewaySetting, Payment, Wallet
from .reversals import DebtError, debt_forgive


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OwesFilter(admin.SimpleListFilter):
    title = "owes money"
    parameter_name = "owes"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Owes money")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> QuerySet[Wallet]:
        return queryset.filter(debt__gt=0) if self.value() == "yes" else queryset


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("user", "balance", "debt", "entries_link")
    list_filter = (OwesFilter,)
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    ordering = ("-balance",)
    show_full_result_count = False
    actions = ["adjust_funds", "forgive_debt"]
    change_list_template = "wallets/admin/wallet_change_list.html"

    @admin.display(description="Ledger")
    def entries_link(self, obj: Wallet) -> str:
        url = reverse("admin:wallets_entry_changelist") + f"?user__id__exact={obj.user_id}"
        return format_html('<a href="{}">entries</a>', url)

    def has_adjust_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wallets.adjust_wallet")

    @admin.action(description="Add or deduct funds", permissions=["adjust"])
    def adjust_funds(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> HttpResponse | None:
        wallets = list(queryset.select_related("user")[:2])
        if len(wallets) != 1:
            self.message_user(request, "Select exactly one wallet to adjust.", messages.WARNING)
            return None
        url = reverse("admin:wallets_wallet_adjust") + f"?user={wallets[0].user.username}"
        return HttpResponseRedirect(url)

    def has_forgive_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wallets.forgive_debt")

    @admin.action(description="Forgive the debt (with a reason)", permissions=["forgive"])
    def forgive_debt(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> HttpResponse | None:
        wallets = list(queryset.select_related("user")[:2])
        if len(wallets) != 1:
            self.message_user(request, "Select exactly one wallet.", messages.WARNING)
            return None
        url = reverse("admin:wallets_wallet_forgive") + f"?user={wallets[0].user.username}"
        return HttpResponseRedirect(url)

    def forgive_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_forgive_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = ForgiveDebtForm(request.POST)
            if form.is_valid():
                user = form.cleaned_data["user"]
                try:
                    entry = debt_forgive(
                        user_id=user.pk,
                        reason=form.cleaned_data["reason"],
                        actor=request.user,
                        idempotency_key=form.cleaned_data["key"],
                    )
                except DebtError as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(request, f"{user}: {-entry.owed} forgiven.", messages.SUCCESS)
                    return redirect("admin:wallets_wallet_changelist")
        else:
            form = ForgiveDebtForm(initial={"user": request.GET.get("user", ""), "key": f"forgive:{uuid4().hex}"})
        username = request.POST.get("user") or request.GET.get("user", "")
        wallet = Wallet.objects.filter(user__username=username).first()
        context = {
            **self.admin_site.each_context(request),
            "title": "Forgive a debt",
            "form": form,
            "debt": wallet.debt if wallet else None,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "wallets/admin/forgive_debt.html", context)

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path("adjust/", self.admin_site.admin_view(self.adjust_view), name="wallets_wallet_adjust"),
            path("forgive/", self.admin_site.admin_view(self.forgive_view), name="wallets_wallet_forgive"),
        ]
        return extra + super().get_urls()  # type: ignore[operator]

    def adjust_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_adjust_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = AdjustForm(request.POST)
            if form.is_valid():
                user = form.cleaned_data["user"]
                try:
                    entry = services.wallet_adjust(
                        user=user,
                        amount=form.cleaned_data["amount"],
                        reason=form.cleaned_data["reason"],
                        actor=request.user,  # type: ignore[arg-type]
                        idempotency_key=form.cleaned_data["key"],
                    )
                except services.WalletError as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(
                        request,
                        f"{user}: {entry.amount:+} recorded, balance now {entry.balance_after}.",
                        messages.SUCCESS,
                    )
                    return redirect("admin:wallets_wallet_changelist")
        else:
            form = AdjustForm(initial={"user": request.GET.get("user", ""), "key": f"adjust:{uuid4().hex}"})
        context = {
            **self.admin_site.each_context(request),
            "title": "Add or deduct funds",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "wallets/admin/adjust.html", context)


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "user",
        "kind",
        "amount",
        "owed",
        "balance_after",
        "order_ref",
        "payment",
        "actor",
        "memo",
    )
    list_filter = ("kind", "created_at")
    search_fields = ("user__username", "idempotency_key", "=order_ref")
    list_select_related = ("user", "actor", "payment")
    raw_id_fields = ("user", "actor", "payment")
    ordering = ("-id",)
    # Millions of entries: never COUNT them, and read a deep page's ids before its rows.
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    # Chosen to fit 1280 px with the filters: status and reference always show.
    list_display = (
        "id",
        "created",
        "user",
        "gateway",
        "amount_text",
        "status",
        "credited",
        "reversed_amount",
        "reference",
        "reviewed_by",
    )
    list_filter = ("gateway", "status", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("user__username", "external_ref", "=charge_ref", "=id")
    list_select_related = ("user", "reviewed_by")
    ordering = ("-id",)
    show_full_result_count = False
    actions = ["approve_selected", "reject_selected"]

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wallets.review_payment")

    class Media:
        css = {"all": ("admin_lists.css",)}

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: Payment) -> str:
        return date_format(localtime(obj.created_at), "Y-m-d H:i")

    @admin.display(description="Amount", ordering="amount")
    def amount_text(self, obj: Payment) -> str:
        return f"{obj.amount:.2f} {obj.currency}"

    @admin.display(description="Reference", ordering="external_ref")
    def reference(self, obj: Payment) -> str:
        """Shortened to keep the list at 1280 px; the whole reference in the tooltip."""
        ref = obj.external_ref
        short = ref if len(ref) <= 28 else f"{ref[:26]}…"
        return format_html('<span title="{}">{}</span>', ref, short)

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<int:payment_id>/review/",
                self.admin_site.admin_view(self.review_view),
                name="wallets_payment_review",
            )
        ]
        return extra + super().get_urls()  # type: ignore[operator]

    def review_view(self, request: HttpRequest, payment_id: int) -> HttpResponse:
        """One manual transfer approved or rejected from the staff dashboard, through the same
        services as the bulk actions; a rejection keeps the reason given."""
        if not self.has_review_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        decision = request.POST.get("decision")
        reason = (request.POST.get("reason") or "").strip()[:200]
        try:
            if decision == "approve":
                payment = services.payment_approve(payment_id=payment_id, actor=request.user)  # type: ignore[arg-type]
                self.message_user(
                    request, _("#%(id)s: %(status)s.") % {"id": payment_id, "status": payment.get_status_display()}
                )
            elif decision == "reject":
                if not reason:
                    self.message_user(
                        request, _("#%(id)s: say why it is rejected.") % {"id": payment_id}, messages.ERROR
                    )
                else:
                    services.payment_reject(payment_id=payment_id, actor=request.user, reason=reason)  # type: ignore[arg-type]
                    self.message_user(request, _("#%(id)s: rejected.") % {"id": payment_id})
            else:
                return HttpResponse(status=400)
        except Payment.DoesNotExist:
            self.message_user(request, _("#%(id)s: no such payment.") % {"id": payment_id}, messages.ERROR)
        except services.WalletError as exc:
            self.message_user(request, f"#{payment_id}: {exc}", messages.ERROR)
        return redirect("admin:index")

    @admin.action(description="Approve selected manual payments (credits the customer)", permissions=["review"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        for payment_id in queryset.values_list("pk", flat=True):
            try:
                payment = services.payment_approve(payment_id=payment_id, actor=request.user)  # type: ignore[arg-type]
            except services.WalletError as exc:
                self.message_user(request, f"#{payment_id}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"#{payment_id}: {payment.get_status_display()}.", messages.SUCCESS)

    @admin.action(description="Reject selected manual payments", permissions=["review"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        for payment_id in queryset.values_list("pk", flat=True):
            try:
                services.payment_reject(
                    payment_id=payment_id,
                    actor=request.user,  # type: ignore[arg-type]
                    reason=f"Rejected by {request.user}.",
                )
            except services.WalletError as exc:
                self.message_user(request, f"#{payment_id}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"#{payment_id}: rejected.", messages.SUCCESS)


@admin.register(BonusTier)
class BonusTierAdmin(admin.ModelAdmin):
    list_display = ("min_amount", "percent", "enabled")
    list_editable = ("percent", "enabled")
    list_filter = ("enabled",)
    ordering = ("min_amount",)


@admin.register(GatewaySetting)
class GatewaySettingAdmin(admin.ModelAdmin):
    """Staff choose per gateway; secrets stay in the environment. Deleting a row restores the defaults."""

    list_display = (
        "code",
        "display_name",
        "enabled",
        "min_amount",
        "max_amount",
        "fee_percent",
        "sort_order",
        "offered",
    )
    list_editable = ("enabled",)
    ordering = ("sort_order", "code")

    @admin.display(description="Offered now", boolean=True)
    def offered(self, obj: GatewaySetting) -> bool:
        config = selectors.gateway_config_get(code=obj.code)
        return bool(config and config.enabled)

    def get_readonly_fields(self, request: HttpRequest, obj: GatewaySetting | None = None) -> tuple[str, ...]:
        # The code names the gateway's payments: a row is never moved to another gateway.
        return ("code",) if obj is not None else ()

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "code":
            taken = set(GatewaySetting.objects.values_list("code", flat=True))
            kwargs["choices"] = [(code, g.label) for code, g in GATEWAYS.items() if code not in taken]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


@admin.register(Affiliate)
class AffiliateAdmin(ReadOnlyAdmin):
    list_display = ("code", "user", "visits", "created_at")
    search_fields = ("code", "user__username")
    list_select_related = ("user",)
