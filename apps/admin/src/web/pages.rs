//! Server-rendered pages of the admin web app (maud: compile-checked HTML, escaped by default).
//!
//! Each page is a function from a small view model to markup, so handlers stay about data and
//! tests can render a page without a server.

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// What every page shows of the signed-in person.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// Display name, or the email when no name is known.
    pub display_name: String,
    /// Email address.
    pub email: String,
    /// Who is impersonating this user, from the token's `act` claim.
    pub impersonator: Option<String>,
}

/// An organization the viewer belongs to, for the switcher.
#[derive(Clone, Debug)]
pub struct OrganizationChoice {
    /// `org_…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether the session is scoped to it now.
    pub active: bool,
}

/// A project row, as the backend returned it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct ProjectRow {
    /// `proj_…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// ISO-8601 creation time.
    pub created_at: String,
}

/// The dashboard's data.
#[derive(Clone, Debug)]
pub struct Dashboard {
    /// The signed-in user.
    pub viewer: Viewer,
    /// `user_…`.
    pub user_id: String,
    /// The active organization, if the session is scoped to one.
    pub organization: Option<OrganizationChoice>,
    /// Role slug in the active organization.
    pub role: Option<String>,
    /// Permission slugs from the access token.
    pub permissions: Vec<String>,
    /// When the access token expires (ISO-8601).
    pub session_expires_at: String,
    /// The session id (`session_…`).
    pub session_id: String,
    /// Every organization the user can switch to.
    pub organizations: Vec<OrganizationChoice>,
    /// Projects of the active organization (from the backend).
    pub projects: Vec<ProjectRow>,
    /// Whether the token carries `projects:write`.
    pub can_write_projects: bool,
    /// A one-line notice to show (e.g. "Project created").
    pub notice: Option<String>,
}

/// A member row on the members page.
#[derive(Clone, Debug)]
pub struct MemberRow {
    /// `om_…`.
    pub membership_id: String,
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role slug.
    pub role: String,
    /// active | inactive | pending.
    pub status: String,
    /// Whether this row is the viewer.
    pub is_viewer: bool,
}

/// The members page's data.
#[derive(Clone, Debug)]
pub struct Members {
    /// The signed-in user.
    pub viewer: Viewer,
    /// The organization listed.
    pub organization_name: String,
    /// Its members.
    pub members: Vec<MemberRow>,
    /// Role slugs an admin can assign.
    pub assignable_roles: Vec<String>,
    /// Whether the viewer may change roles or remove members.
    pub can_manage: bool,
    /// A one-line notice to show.
    pub notice: Option<String>,
}

const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5b6476; --line:#e3e6ec; --accent:#4f46e5; --bg:#f7f8fa; --warn:#b45309; --bad:#b91c1c; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; align-items:center; gap:1.5rem; padding:.8rem 2rem; background:#fff; border-bottom:1px solid var(--line); }
header .brand { font-weight:700; color:var(--fg); text-decoration:none; }
header nav { display:flex; gap:1rem; flex:1; }
header nav a { color:var(--muted); text-decoration:none; }
header nav a:hover { color:var(--accent); }
main { max-width:960px; margin:2rem auto; padding:0 2rem; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:1.2rem 1.5rem; margin-bottom:1.2rem; }
h1 { font-size:1.6rem; margin:.2rem 0 1rem; } h2 { font-size:1.1rem; margin:0 0 .8rem; }
dl { display:grid; grid-template-columns:max-content 1fr; gap:.3rem 1.2rem; margin:0; } dt { color:var(--muted); }
table { width:100%; border-collapse:collapse; } th,td { text-align:left; padding:.45rem .4rem; border-bottom:1px solid var(--line); }
th { color:var(--muted); font-weight:600; font-size:.85rem; text-transform:uppercase; letter-spacing:.03em; }
.btn { display:inline-block; padding:.45rem .9rem; border-radius:7px; border:1px solid var(--accent); background:var(--accent); color:#fff; text-decoration:none; font:inherit; cursor:pointer; }
.btn.secondary { background:#fff; color:var(--accent); } .btn.danger { background:#fff; color:var(--bad); border-color:var(--bad); }
.tag { display:inline-block; padding:.05rem .5rem; border-radius:99px; background:#eef2ff; color:var(--accent); font-size:.85rem; margin:0 .25rem .25rem 0; }
.notice { padding:.6rem 1rem; border-radius:8px; background:#ecfdf5; border:1px solid #a7f3d0; margin-bottom:1rem; }
.banner { padding:.6rem 2rem; background:#fffbeb; color:var(--warn); border-bottom:1px solid #fde68a; }
.muted { color:var(--muted); } form.inline { display:inline; } input[type=text], select { padding:.4rem .6rem; border:1px solid var(--line); border-radius:6px; font:inherit; }
.hero { text-align:center; padding:3rem 1rem; } .hero p { color:var(--muted); max-width:36rem; margin:0 auto 1.5rem; }
"#;

fn layout(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · AuthKit admin" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                @if let Some(impersonator) = viewer.and_then(|v| v.impersonator.as_deref()) {
                    div.banner role="status" data-testid="impersonation-banner" {
                        "You are being impersonated by " strong { (impersonator) } "."
                    }
                }
                header {
                    a.brand href="/" { "AuthKit admin" }
                    nav {
                        @if viewer.is_some() {
                            a href="/dashboard" { "Dashboard" }
                            a href="/members" { "Members" }
                            a href="/directory" { "Directory" }
                            a href="/account" { "Account" }
                        }
                    }
                    @match viewer {
                        Some(v) => span.muted data-testid="viewer-email" { (v.email) },
                        None => a.btn href="/login" { "Sign in" },
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The public home page.
pub fn home(viewer: Option<&Viewer>) -> Markup {
    layout(
        "Welcome",
        viewer,
        html! {
            section.hero {
                h1 { "AuthKit admin" }
                p { "A reference admin app: sign in with AuthKit, switch organizations, manage members and projects. Every page calls a backend that trusts only verified bearer tokens." }
                @if viewer.is_some() {
                    a.btn href="/dashboard" { "Go to the dashboard" }
                } @else {
                    a.btn href="/login" data-testid="sign-in" { "Sign in" }
                    " "
                    a.btn.secondary href="/signup" data-testid="sign-up" { "Sign up" }
                }
            }
        },
    )
}

/// The protected dashboard.
pub fn dashboard(d: &Dashboard) -> Markup {
    layout(
        "Dashboard",
        Some(&d.viewer),
        html! {
            @if let Some(notice) = &d.notice { div.notice role="status" { (notice) } }
            h1 data-testid="welcome" { "Hello, " (d.viewer.display_name) }
            div.card {
                h2 { "Session" }
                dl {
                    dt { "User" } dd data-testid="user-email" { (d.viewer.email) " " span.muted { "(" (d.user_id) ")" } }
                    dt { "Organization" } dd data-testid="active-org" {
                        @match &d.organization { Some(o) => { (o.name) " " span.muted { "(" (o.id) ")" } }, None => span.muted { "none" } }
                    }
                    dt { "Role" } dd data-testid="role" { (d.role.as_deref().unwrap_or("none")) }
                    dt { "Permissions" } dd data-testid="permissions" {
                        @for p in &d.permissions { span.tag { (p) } }
                        @if d.permissions.is_empty() { span.muted { "none" } }
                    }
                    dt { "Session" } dd { code { (d.session_id) } }
                    dt { "Token expires" } dd data-testid="expires" { (d.session_expires_at) }
                }
            }
            @if d.organizations.len() > 1 {
                div.card {
                    h2 { "Switch organization" }
                    form method="post" action="/auth/switch-organization" data-testid="org-switcher" {
                        input type="hidden" name="return_to" value="/dashboard?notice=switched";
                        select name="organization_id" aria-label="Organization" {
                            @for o in &d.organizations {
                                option value=(o.id) selected[o.active] { (o.name) }
                            }
                        }
                        " "
                        button.btn type="submit" { "Switch" }
                    }
                }
            }
            div.card {
                h2 { "Projects" }
                @if d.projects.is_empty() {
                    p.muted data-testid="no-projects" { "No projects in this organization yet." }
                } @else {
                    table data-testid="projects" {
                        thead { tr { th { "Name" } th { "Id" } th { "Created" } th {} } }
                        tbody {
                            @for p in &d.projects {
                                tr {
                                    td { (p.name) }
                                    td { code { (p.id) } }
                                    td.muted { (p.created_at) }
                                    td {
                                        @if d.can_write_projects {
                                            form.inline method="post" action={ "/projects/" (p.id) "/delete" } {
                                                button.btn.danger type="submit" { "Delete" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if d.can_write_projects {
                    form method="post" action="/projects" style="margin-top:1rem" {
                        input type="text" name="name" placeholder="New project name" required maxlength="100" aria-label="Project name";
                        " "
                        button.btn type="submit" { "Create project" }
                    }
                } @else {
                    p.muted { "You can view projects; creating them needs the projects:write permission." }
                }
            }
        },
    )
}

/// The members page of the active organization.
pub fn members(m: &Members) -> Markup {
    layout(
        "Members",
        Some(&m.viewer),
        html! {
            @if let Some(notice) = &m.notice { div.notice role="status" { (notice) } }
            h1 { "Members of " (m.organization_name) }
            div.card {
                table data-testid="members" {
                    thead { tr { th { "Name" } th { "Email" } th { "Role" } th { "Status" } @if m.can_manage { th { "Manage" } } } }
                    tbody {
                        @for row in &m.members {
                            tr {
                                td { (row.name) }
                                td { (row.email) }
                                td { span.tag { (row.role) } }
                                td.muted { (row.status) }
                                @if m.can_manage {
                                    td {
                                        @if !row.is_viewer {
                                            form.inline method="post" action={ "/members/" (row.membership_id) "/role" } {
                                                select name="role_slug" aria-label="Role" {
                                                    @for r in &m.assignable_roles { option value=(r) selected[*r == row.role] { (r) } }
                                                }
                                                " " button.btn.secondary type="submit" { "Change role" }
                                            }
                                            " "
                                            form.inline method="post" action={ "/members/" (row.membership_id) "/remove" } {
                                                button.btn.danger type="submit" { "Remove" }
                                            }
                                        } @else { span.muted { "you" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !m.can_manage {
                p.muted { "Only admins can change roles or remove members." }
            }
        },
    )
}

/// A user mirrored by Directory Sync.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct DirectoryUserRow {
    /// `directory_user_…`.
    pub id: String,
    /// Primary email.
    pub email: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// `active`, `inactive` or `suspended`.
    pub state: String,
    /// Names of the user's groups.
    pub groups: Vec<String>,
}

/// A group mirrored by Directory Sync.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct DirectoryGroupRow {
    /// `directory_group_…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Number of members.
    pub members: usize,
}

/// The directory page of the active organization.
pub fn directory(
    viewer: &Viewer,
    users: &[DirectoryUserRow],
    groups: &[DirectoryGroupRow],
) -> Markup {
    layout(
        "Directory",
        Some(viewer),
        html! {
            h1 { "Directory" }
            p.muted { "People and groups your identity provider pushes through Directory Sync (SCIM), mirrored into this app's database by authkit-sync." }
            div.card {
                h2 { "Users" }
                @if users.is_empty() {
                    p.muted data-testid="no-directory-users" { "No directory users synced for this organization yet." }
                } @else {
                    table data-testid="directory-users" {
                        thead { tr { th { "Name" } th { "Email" } th { "State" } th { "Groups" } } }
                        tbody {
                            @for u in users {
                                tr {
                                    td { (u.first_name.as_deref().unwrap_or("")) " " (u.last_name.as_deref().unwrap_or("")) }
                                    td { (u.email.as_deref().unwrap_or("")) }
                                    td { span.tag { (u.state) } }
                                    td { @for g in &u.groups { span.tag { (g) } } }
                                }
                            }
                        }
                    }
                }
            }
            div.card {
                h2 { "Groups" }
                @if groups.is_empty() {
                    p.muted { "No groups." }
                } @else {
                    table data-testid="directory-groups" {
                        thead { tr { th { "Name" } th { "Members" } } }
                        tbody { @for g in groups { tr { td { (g.name) } td { (g.members) } } } }
                    }
                }
            }
        },
    )
}

/// The account page, with sign-out.
pub fn account(viewer: &Viewer, user_id: &str) -> Markup {
    layout(
        "Account",
        Some(viewer),
        html! {
            h1 { "Account" }
            div.card {
                dl {
                    dt { "Name" } dd { (viewer.display_name) }
                    dt { "Email" } dd { (viewer.email) }
                    dt { "User id" } dd { code { (user_id) } }
                }
            }
            form method="post" action="/auth/sign-out" {
                button.btn.danger type="submit" data-testid="sign-out" { "Sign out" }
            }
        },
    )
}

/// A readable error page (403, 404, 502, ...).
pub fn error_page(viewer: Option<&Viewer>, status: u16, title: &str, message: &str) -> Markup {
    layout(
        title,
        viewer,
        html! {
            div.card data-testid="error" {
                h1 { (status) " · " (title) }
                p { (message) }
                a.btn.secondary href="/dashboard" { "Back to the dashboard" }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer() -> Viewer {
        Viewer {
            display_name: "Alice <Admin>".into(),
            email: "alice@acme.test".into(),
            impersonator: None,
        }
    }

    #[test]
    fn pages_escape_user_controlled_text() {
        let html = account(&viewer(), "user_1").into_string();
        assert!(html.contains("Alice &lt;Admin&gt;"));
        assert!(!html.contains("<Admin>"));
    }

    #[test]
    fn impersonation_banner_names_the_impersonator() {
        let mut v = viewer();
        assert!(
            !home(Some(&v))
                .into_string()
                .contains("impersonation-banner")
        );
        v.impersonator = Some("support@workos.test".into());
        let html = home(Some(&v)).into_string();
        assert!(html.contains("impersonation-banner"));
        assert!(html.contains("support@workos.test"));
    }

    #[test]
    fn members_page_hides_management_from_members() {
        let m = Members {
            viewer: viewer(),
            organization_name: "Acme".into(),
            members: vec![MemberRow {
                membership_id: "om_1".into(),
                email: "bob@acme.test".into(),
                name: "Bob".into(),
                role: "member".into(),
                status: "active".into(),
                is_viewer: false,
            }],
            assignable_roles: vec!["admin".into(), "member".into()],
            can_manage: false,
            notice: None,
        };
        let html = members(&m).into_string();
        assert!(!html.contains("/members/om_1/remove"));
        let html = members(&Members {
            can_manage: true,
            ..m
        })
        .into_string();
        assert!(html.contains("/members/om_1/remove"));
    }
}
