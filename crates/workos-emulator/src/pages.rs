//! HTML of the hosted sign-in (maud templates): sign-in, sign-up, organization picker, error
//! and signed-out pages.
//!
//! Every page is sent with headers from RFC 9700: `Content-Security-Policy: frame-ancestors
//! 'none'` (no clickjacking, §4.16), `Referrer-Policy: no-referrer` (the authorize query never
//! leaks through `Referer`, §4.2), and `Cache-Control: no-store`. maud escapes every
//! interpolated value, so user input (emails, `state`, error text) cannot inject markup.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// Hidden form fields that carry the original authorize request through each POST.
#[derive(Debug, Clone, Default)]
pub struct Hidden(pub Vec<(&'static str, String)>);

/// What the sign-in and sign-up pages show.
#[derive(Debug, Clone, Default)]
pub struct FormPage {
    /// Hidden authorize parameters.
    pub hidden: Hidden,
    /// Prefilled email (`login_hint`, or what was typed).
    pub email: String,
    /// Error text to show above the form.
    pub error: Option<String>,
    /// Sign-up page link target (the same authorize request with `screen_hint=sign-up`).
    pub switch_href: String,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f6f7f9;margin:0}\
main{max-width:380px;margin:8vh auto;background:#fff;padding:32px;border-radius:12px;\
box-shadow:0 1px 4px rgba(0,0,0,.12)}h1{font-size:1.4rem;margin:0 0 4px}\
p.sub{color:#666;margin:0 0 24px;font-size:.9rem}label{display:block;font-size:.85rem;\
margin:12px 0 4px}input[type=email],input[type=password],input[type=text]{width:100%;\
box-sizing:border-box;padding:10px;border:1px solid #ccd;border-radius:6px;font-size:1rem}\
button{margin-top:20px;width:100%;padding:11px;border:0;border-radius:6px;background:#6363f1;\
color:#fff;font-size:1rem;cursor:pointer}.error{background:#fdecea;color:#a1251b;padding:10px;\
border-radius:6px;margin-bottom:12px;font-size:.9rem}.alt{margin-top:16px;font-size:.85rem;\
text-align:center}.org{margin-top:10px}.org button{background:#fff;color:#222;\
border:1px solid #ccd;text-align:left}footer{text-align:center;color:#999;font-size:.75rem;\
margin-top:16px}";

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · WorkOS emulator" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                main { (body) }
                footer { "workos-emulator: local development only" }
            }
        }
    }
}

fn hidden_fields(hidden: &Hidden) -> Markup {
    html! {
        @for (name, value) in &hidden.0 {
            input type="hidden" name=(name) value=(value);
        }
    }
}

fn error_box(error: &Option<String>) -> Markup {
    html! {
        @if let Some(error) = error {
            div.error role="alert" id="error" { (error) }
        }
    }
}

/// The email + password sign-in page.
pub fn sign_in(page: &FormPage) -> Markup {
    layout(
        "Sign in",
        html! {
            h1 { "Sign in" }
            p.sub { "Use an emulated user's email and password." }
            (error_box(&page.error))
            form method="post" action="/user_management/authorize" {
                (hidden_fields(&page.hidden))
                input type="hidden" name="action" value="sign-in";
                label for="email" { "Email" }
                input #email type="email" name="email" value=(page.email) autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Continue" }
            }
            p.alt { "No account? " a href=(page.switch_href) { "Sign up" } }
        },
    )
}

/// The sign-up page (`screen_hint=sign-up`).
pub fn sign_up(page: &FormPage) -> Markup {
    layout(
        "Create account",
        html! {
            h1 { "Create an account" }
            p.sub { "The user is created in the emulator." }
            (error_box(&page.error))
            form method="post" action="/user_management/authorize" {
                (hidden_fields(&page.hidden))
                input type="hidden" name="action" value="sign-up";
                label for="first_name" { "First name" }
                input #first_name type="text" name="first_name" autocomplete="given-name";
                label for="last_name" { "Last name" }
                input #last_name type="text" name="last_name" autocomplete="family-name";
                label for="email" { "Email" }
                input #email type="email" name="email" value=(page.email) autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="new-password" required;
                button type="submit" { "Create account" }
            }
            p.alt { "Have an account? " a href=(page.switch_href) { "Sign in" } }
        },
    )
}

/// The organization picker: one button per active membership.
pub fn organization_picker(
    hidden: &Hidden,
    organizations: &[(String, String)],
    error: &Option<String>,
) -> Markup {
    layout(
        "Choose an organization",
        html! {
            h1 { "Choose an organization" }
            p.sub { "You are a member of several organizations." }
            (error_box(error))
            @for (id, name) in organizations {
                form.org method="post" action="/user_management/authorize" {
                    (hidden_fields(hidden))
                    input type="hidden" name="action" value="select-organization";
                    input type="hidden" name="selected_organization_id" value=(id);
                    button type="submit" name="organization" value=(id) { (name) }
                }
            }
        },
    )
}

/// An error page for requests that must not redirect (bad client or redirect URI).
pub fn error_page(title: &str, message: &str) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            div.error role="alert" id="error" { (message) }
            p.sub { "The application sent an invalid sign-in request. Nothing was sent back to it." }
        },
    )
}

/// Shown after logout when no (allowed) `return_to` was given.
pub fn signed_out() -> Markup {
    layout(
        "Signed out",
        html! {
            h1 { "You are signed out" }
            p.sub { "The session has ended. You can close this page." }
        },
    )
}

fn secure_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A page with the security headers and the given status.
pub fn respond(status: StatusCode, page: Markup) -> Response {
    let mut response = (status, page).into_response();
    secure_headers(&mut response);
    response
}

/// `302 Found` to `location`, with `Referrer-Policy: no-referrer`. A location that is not a
/// valid header value becomes an error page (it cannot happen for URLs built with `url`).
pub fn found(location: &str) -> Response {
    redirect(StatusCode::FOUND, location)
}

/// `303 See Other` (after a form POST, RFC 9700 §4.12).
pub fn see_other(location: &str) -> Response {
    redirect(StatusCode::SEE_OTHER, location)
}

fn redirect(status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = status.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            secure_headers(&mut response);
            response
        }
        Err(_) => respond(
            StatusCode::BAD_REQUEST,
            error_page("Invalid redirect", "The redirect URI cannot be used."),
        ),
    }
}
