"""HTML pages (Jinja2 + HTMX). Handlers parse, authorise, call one domain function."""

from litestar.types import ControllerRouterHandler

from web.pages.auth import login_page, login_submit, logout_submit, otp_submit
from web.pages.home import home

PAGE_ROUTES: list[ControllerRouterHandler] = [
    login_page,
    login_submit,
    otp_submit,
    logout_submit,
    home,
]
