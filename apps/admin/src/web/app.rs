//! The admin web app's routes: pages for signed-in users, data from the backend API (with
//! the user's access token as a bearer token) and from the WorkOS API (with the app's key).

use std::sync::Arc;

use authkit::auth::Authenticated;
use authkit_axum::{Auth, OptionalAuth, Principal};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use workos::organization_membership::{
    ListOrganizationMembershipsParams, Role, UpdateOrganizationMembershipParams,
    UpdateOrganizationMembershipParamsBody,
};

use super::pages::{self, Dashboard, MemberRow, Members, OrganizationChoice, ProjectRow, Viewer};

/// Permission that lets a member change roles and remove members.
pub const MEMBERS_MANAGE: &str = "members:manage";
/// Permission that lets a member create and delete projects (checked again by the backend).
pub const PROJECTS_WRITE: &str = "projects:write";

/// The admin web app.
#[derive(Clone)]
pub struct AdminWeb {
    inner: Arc<Inner>,
}

struct Inner {
    backend_url: String,
    http: reqwest::Client,
    workos: workos::Client,
    assignable_roles: Vec<String>,
}

impl AdminWeb {
    /// An app that calls the backend at `backend_url` and WorkOS through `workos`.
    /// `assignable_roles` are the role slugs an admin may give members.
    pub fn new(
        backend_url: impl Into<String>,
        workos: workos::Client,
        assignable_roles: Vec<String>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                backend_url: backend_url.into().trim_end_matches('/').to_owned(),
                http,
                workos,
                assignable_roles,
            }),
        }
    }

    /// The app's pages. Wrap the result in an authkit-axum web-mode layer whose public paths
    /// include `/`, `/login` and `/signup`, and merge in authkit-axum's auth routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(home))
            .route(
                "/login",
                get(|| async { Redirect::to("/auth/sign-in?return_to=/dashboard") }),
            )
            .route(
                "/signup",
                get(|| async { Redirect::to("/auth/sign-up?return_to=/dashboard") }),
            )
            .route("/dashboard", get(dashboard))
            .route("/projects", post(create_project))
            .route("/projects/{id}/delete", post(delete_project))
            .route("/members", get(members))
            .route("/members/{id}/role", post(change_role))
            .route("/members/{id}/remove", post(remove_member))
            .route("/account", get(account))
            .route("/directory", get(directory))
            .fallback(|OptionalAuth(p): OptionalAuth| async move {
                WebError::page(
                    p.as_ref(),
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "There is no page here.",
                )
            })
            .with_state(self)
    }
}

/// A failed page: rendered as a readable HTML error page.
struct WebError(Box<Response>);

impl WebError {
    fn page(principal: Option<&Principal>, status: StatusCode, title: &str, message: &str) -> Self {
        let viewer = principal.and_then(|p| user(p).ok()).map(viewer);
        let html = pages::error_page(viewer.as_ref(), status.as_u16(), title, message);
        WebError(Box::new((status, Html(html.into_string())).into_response()))
    }

    fn forbidden(principal: &Principal, what: &str) -> Self {
        Self::page(
            Some(principal),
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("Your role does not allow you to {what}."),
        )
    }

    fn upstream(principal: &Principal, what: &str, error: impl std::fmt::Display) -> Self {
        tracing::warn!(%error, "{what} failed");
        Self::page(
            Some(principal),
            StatusCode::BAD_GATEWAY,
            "Something went wrong",
            &format!("Could not {what}. Try again in a moment."),
        )
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        *self.0
    }
}

fn user(principal: &Principal) -> Result<&Authenticated, WebError> {
    match principal {
        Principal::User(u) => Ok(u),
        Principal::ApiKey(_) => Err(WebError::page(
            None,
            StatusCode::UNAUTHORIZED,
            "Sign in required",
            "This page is for people; API keys cannot use it.",
        )),
    }
}

fn viewer(auth: &Authenticated) -> Viewer {
    let (display_name, email) = match auth.user() {
        Some(u) => {
            let name = [u.first_name.as_deref(), u.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let name = if name.is_empty() {
                u.email.clone()
            } else {
                name
            };
            (name, u.email.clone())
        }
        None => (auth.user_id().to_owned(), auth.user_id().to_owned()),
    };
    Viewer {
        display_name,
        email,
        impersonator: auth.impersonator().map(|i| i.email.clone()),
    }
}

async fn home(OptionalAuth(principal): OptionalAuth) -> Html<String> {
    let viewer = principal.as_ref().and_then(|p| user(p).ok()).map(viewer);
    Html(pages::home(viewer.as_ref()).into_string())
}

#[derive(Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

fn notice_text(code: Option<&str>) -> Option<String> {
    // Only known codes are shown, so the query string cannot inject text into the page.
    match code? {
        "project-created" => Some("Project created.".into()),
        "project-deleted" => Some("Project deleted.".into()),
        "role-changed" => Some("Role changed.".into()),
        "member-removed" => Some("Member removed.".into()),
        "switched" => Some("Organization switched.".into()),
        _ => None,
    }
}

async fn dashboard(
    State(app): State<AdminWeb>,
    Auth(principal): Auth,
    Query(q): Query<NoticeQuery>,
) -> Result<Html<String>, WebError> {
    let auth = user(&principal)?;
    let memberships = app
        .user_memberships(auth.user_id())
        .await
        .map_err(|e| WebError::upstream(&principal, "load your organizations", e))?;
    let active = auth.organization_id();
    let organizations: Vec<OrganizationChoice> = memberships
        .iter()
        .map(|m| OrganizationChoice {
            id: m.organization_id.clone(),
            name: m
                .organization_name
                .clone()
                .unwrap_or_else(|| m.organization_id.clone()),
            active: Some(m.organization_id.as_str()) == active,
        })
        .collect();
    let projects = if active.is_some() {
        app.backend_projects(auth)
            .await
            .map_err(|e| WebError::upstream(&principal, "load projects", e))?
    } else {
        Vec::new()
    };
    let expires: chrono::DateTime<chrono::Utc> = auth.expires_at().into();
    let page = Dashboard {
        viewer: viewer(auth),
        user_id: auth.user_id().to_owned(),
        organization: organizations.iter().find(|o| o.active).cloned(),
        role: auth.role().map(str::to_owned),
        permissions: auth.permissions().to_vec(),
        session_expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        session_id: auth.session_id().unwrap_or_default().to_owned(),
        organizations,
        projects,
        can_write_projects: auth.has_permission(PROJECTS_WRITE),
        notice: notice_text(q.notice.as_deref()),
    };
    Ok(Html(pages::dashboard(&page).into_string()))
}

#[derive(Deserialize)]
struct NewProjectForm {
    name: String,
}

async fn create_project(
    State(app): State<AdminWeb>,
    Auth(principal): Auth,
    Form(form): Form<NewProjectForm>,
) -> Result<Response, WebError> {
    let auth = user(&principal)?;
    let response = app
        .inner
        .http
        .post(format!("{}/projects", app.inner.backend_url))
        .bearer_auth(auth.access_token())
        .json(&serde_json::json!({ "name": form.name }))
        .send()
        .await
        .map_err(|e| WebError::upstream(&principal, "create the project", e))?;
    match response.status() {
        StatusCode::CREATED => {
            Ok(Redirect::to("/dashboard?notice=project-created").into_response())
        }
        StatusCode::FORBIDDEN => Err(WebError::forbidden(&principal, "create projects")),
        StatusCode::UNPROCESSABLE_ENTITY => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let message = body["message"]
                .as_str()
                .unwrap_or("The project name is not valid.");
            Err(WebError::page(
                Some(&principal),
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid project",
                message,
            ))
        }
        other => Err(WebError::upstream(&principal, "create the project", other)),
    }
}

async fn delete_project(
    State(app): State<AdminWeb>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let auth = user(&principal)?;
    let response = app
        .inner
        .http
        .delete(format!(
            "{}/projects/{}",
            app.inner.backend_url,
            urlencode(&id)
        ))
        .bearer_auth(auth.access_token())
        .send()
        .await
        .map_err(|e| WebError::upstream(&principal, "delete the project", e))?;
    match response.status() {
        StatusCode::NO_CONTENT => {
            Ok(Redirect::to("/dashboard?notice=project-deleted").into_response())
        }
        StatusCode::FORBIDDEN => Err(WebError::forbidden(&principal, "delete projects")),
        StatusCode::NOT_FOUND => Err(WebError::page(
            Some(&principal),
            StatusCode::NOT_FOUND,
            "Not found",
            "No such project in this organization.",
        )),
        other => Err(WebError::upstream(&principal, "delete the project", other)),
    }
}

async fn members(
    State(app): State<AdminWeb>,
    Auth(principal): Auth,
    Query(q): Query<NoticeQuery>,
) -> Result<Html<String>, WebError> {
    let auth = user(&principal)?;
    let Some(org_id) = auth.organization_id() else {
        return Err(WebError::page(
            Some(&principal),
            StatusCode::FORBIDDEN,
            "No organization",
            "Your session is not in an organization.",
        ));
    };
    let memberships = app
        .org_memberships(org_id)
        .await
        .map_err(|e| WebError::upstream(&principal, "load members", e))?;
    let organization_name = memberships
        .iter()
        .find_map(|m| m.organization_name.clone())
        .unwrap_or_else(|| org_id.to_owned());
    let rows = memberships
        .into_iter()
        .map(|m| {
            let name = [m.user.first_name.as_deref(), m.user.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            MemberRow {
                is_viewer: m.user_id == auth.user_id(),
                membership_id: m.id,
                name: if name.is_empty() {
                    m.user.email.clone()
                } else {
                    name
                },
                email: m.user.email,
                role: m.role.slug,
                status: serde_json::to_value(&m.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            }
        })
        .collect();
    let page = Members {
        viewer: viewer(auth),
        organization_name,
        members: rows,
        assignable_roles: app.inner.assignable_roles.clone(),
        can_manage: auth.has_permission(MEMBERS_MANAGE),
        notice: notice_text(q.notice.as_deref()),
    };
    Ok(Html(pages::members(&page).into_string()))
}

#[derive(Deserialize)]
struct RoleForm {
    role_slug: String,
}

/// Checks the viewer may manage members and that membership `id` belongs to the viewer's
/// active organization: an admin of one organization must not reach into another by id.
async fn managed_membership<'p>(
    app: &AdminWeb,
    principal: &'p Principal,
    id: &str,
    what: &str,
) -> Result<&'p Authenticated, WebError> {
    let auth = user(principal)?;
    if !auth.has_permission(MEMBERS_MANAGE) {
        return Err(WebError::forbidden(principal, what));
    }
    let not_found = || {
        WebError::page(
            Some(principal),
            StatusCode::NOT_FOUND,
            "Not found",
            "No such member in this organization.",
        )
    };
    let membership = app
        .inner
        .workos
        .organization_membership()
        .get_organization_membership(id)
        .await
        .map_err(|_| not_found())?;
    if Some(membership.organization_id.as_str()) != auth.organization_id() {
        return Err(not_found());
    }
    Ok(auth)
}

async fn change_role(
    State(app): State<AdminWeb>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Form(form): Form<RoleForm>,
) -> Result<Response, WebError> {
    managed_membership(&app, &principal, &id, "change roles").await?;
    if !app.inner.assignable_roles.contains(&form.role_slug) {
        return Err(WebError::page(
            Some(&principal),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unknown role",
            "That role cannot be assigned.",
        ));
    }
    let mut body = UpdateOrganizationMembershipParamsBody::new();
    body.role = Some(Role::Single {
        role_slug: form.role_slug,
    });
    app.inner
        .workos
        .organization_membership()
        .update_organization_membership(&id, UpdateOrganizationMembershipParams::new(body))
        .await
        .map_err(|e| WebError::upstream(&principal, "change the role", e))?;
    Ok(Redirect::to("/members?notice=role-changed").into_response())
}

async fn remove_member(
    State(app): State<AdminWeb>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    managed_membership(&app, &principal, &id, "remove members").await?;
    app.inner
        .workos
        .organization_membership()
        .delete_organization_membership(&id)
        .await
        .map_err(|e| WebError::upstream(&principal, "remove the member", e))?;
    Ok(Redirect::to("/members?notice=member-removed").into_response())
}

async fn directory(
    State(app): State<AdminWeb>,
    Auth(principal): Auth,
) -> Result<Html<String>, WebError> {
    #[derive(Deserialize)]
    struct Body {
        users: Vec<pages::DirectoryUserRow>,
        groups: Vec<pages::DirectoryGroupRow>,
    }
    let auth = user(&principal)?;
    if auth.organization_id().is_none() {
        return Err(WebError::page(
            Some(&principal),
            StatusCode::FORBIDDEN,
            "No organization",
            "Your session is not in an organization.",
        ));
    }
    let response = app
        .inner
        .http
        .get(format!("{}/directory", app.inner.backend_url))
        .bearer_auth(auth.access_token())
        .send()
        .await
        .map_err(|e| WebError::upstream(&principal, "load the directory", e))?;
    if !response.status().is_success() {
        return Err(WebError::upstream(
            &principal,
            "load the directory",
            response.status(),
        ));
    }
    let body: Body = response
        .json()
        .await
        .map_err(|e| WebError::upstream(&principal, "load the directory", e))?;
    Ok(Html(
        pages::directory(&viewer(auth), &body.users, &body.groups).into_string(),
    ))
}

async fn account(Auth(principal): Auth) -> Result<Html<String>, WebError> {
    let auth = user(&principal)?;
    Ok(Html(
        pages::account(&viewer(auth), auth.user_id()).into_string(),
    ))
}

impl AdminWeb {
    async fn user_memberships(
        &self,
        user_id: &str,
    ) -> Result<Vec<workos::UserOrganizationMembership>, workos::Error> {
        let params = ListOrganizationMembershipsParams {
            user_id: Some(user_id.to_owned()),
            limit: Some(100),
            ..Default::default()
        };
        Ok(self
            .inner
            .workos
            .organization_membership()
            .list_organization_memberships(params)
            .await?
            .data)
    }

    async fn org_memberships(
        &self,
        organization_id: &str,
    ) -> Result<Vec<workos::UserOrganizationMembership>, workos::Error> {
        let params = ListOrganizationMembershipsParams {
            organization_id: Some(organization_id.to_owned()),
            limit: Some(100),
            order: Some(workos::PaginationOrder::Asc),
            ..Default::default()
        };
        Ok(self
            .inner
            .workos
            .organization_membership()
            .list_organization_memberships(params)
            .await?
            .data)
    }

    async fn backend_projects(&self, auth: &Authenticated) -> Result<Vec<ProjectRow>, String> {
        #[derive(Deserialize)]
        struct List {
            data: Vec<ProjectRow>,
        }
        let response = self
            .inner
            .http
            .get(format!("{}/projects", self.inner.backend_url))
            .bearer_auth(auth.access_token())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("backend answered {}", response.status()));
        }
        Ok(response
            .json::<List>()
            .await
            .map_err(|e| e.to_string())?
            .data)
    }
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
