"""HTML pages (Jinja2 + HTMX). Handlers parse, authorise, call one domain function."""

from litestar.types import ControllerRouterHandler

from web.pages.audit import audit_page, audit_verify
from web.pages.auth import login_page, login_submit, logout_submit, otp_submit
from web.pages.earnings import earnings_bank, earnings_page, fee_page, fee_pay
from web.pages.finance import (
    finance_appropriate,
    finance_approve_appropriation,
    finance_approve_transfer,
    finance_bank_file,
    finance_batch,
    finance_batch_approve,
    finance_batch_execute,
    finance_build_batch,
    finance_home,
    finance_open_pool,
    finance_reconciliation,
)
from web.pages.home import home
from web.pages.inbox import inbox_mark_all_read, inbox_mark_read, inbox_page
from web.pages.regions import region_page, regions_root, set_population, village_row
from web.pages.users import user_create, user_edit, user_new, user_update, users_page
from web.pages.worker_import import import_page, import_template, import_upload
from web.pages.workers import (
    duplicates_dismiss,
    duplicates_page,
    worker_create,
    worker_delete,
    worker_delete_confirm,
    worker_edit,
    worker_merge,
    worker_new,
    worker_page,
    worker_reveal,
    worker_update,
    worker_verify,
    workers_page,
)

PAGE_ROUTES: list[ControllerRouterHandler] = [
    login_page,
    login_submit,
    otp_submit,
    logout_submit,
    home,
    regions_root,
    region_page,
    village_row,
    set_population,
    users_page,
    user_new,
    user_create,
    user_edit,
    user_update,
    audit_page,
    audit_verify,
    inbox_page,
    inbox_mark_read,
    inbox_mark_all_read,
    workers_page,
    worker_new,
    worker_create,
    duplicates_page,
    duplicates_dismiss,
    worker_page,
    worker_edit,
    worker_update,
    worker_reveal,
    worker_verify,
    worker_delete_confirm,
    worker_delete,
    worker_merge,
    import_page,
    import_template,
    import_upload,
    finance_home,
    finance_open_pool,
    finance_appropriate,
    finance_approve_appropriation,
    finance_approve_transfer,
    finance_build_batch,
    finance_batch,
    finance_batch_approve,
    finance_batch_execute,
    finance_bank_file,
    finance_reconciliation,
    earnings_page,
    earnings_bank,
    fee_page,
    fee_pay,
]
