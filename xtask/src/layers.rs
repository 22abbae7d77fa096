//! The dependency rules between the workspace's crates (`docs/architecture.md`), checked
//! from `cargo metadata`:
//!
//! - `conc-core` depends only on a few small crates ([`CORE_ALLOWED`]): no tokio, no dashmap.
//! - A leaf crate (every published `conc-*` crate that is not named below) depends on
//!   `conc-core` and third-party crates only, never on another workspace crate.
//! - The composite crates ([`COMPOSITES`]) depend only on the workspace crates they list.
//! - The umbrella (`conc-kit`, whose library is `conc`) may depend on every published crate.
//! - No published crate depends on an unpublished one (`conc-test-support`, `benches`,
//!   `xtask`) other than as a dev-dependency.
//!
//! Dev-dependencies are free: tests may use anything. Each broken rule is one offence
//! naming the edge, as `crates/<dir>/Cargo.toml:<line>: <from> depends on <to>: <rule>`.

use crate::json::Value;

/// The package name of the umbrella crate.
pub(crate) const UMBRELLA: &str = "conc-kit";

/// The only dependencies `conc-core` may have (dev-dependencies aside).
pub(crate) const CORE_ALLOWED: [&str; 3] = ["metrics", "thiserror", "futures-core"];

/// The composite crates and the workspace crates each may depend on.
pub(crate) const COMPOSITES: [(&str, &[&str]); 3] = [
    ("conc-bus", &["conc-core", "conc-lock", "conc-ratelimit", "conc-resilience"]),
    // The admin operations (`Admin`, `connect`): the dashboard and the binary share them.
    ("conc-bus-cli", &["conc-core", "conc-bus"]),
    // The web dashboard puts pages on the admin operations; nothing depends on it.
    ("conc-dashboard", &["conc-core", "conc-bus", "conc-bus-cli"]),
];

/// One workspace package as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    /// The package name.
    pub(crate) name: String,
    /// Its manifest, relative to the workspace root.
    pub(crate) manifest: String,
    /// Whether it may be published.
    pub(crate) published: bool,
    /// Its normal and build dependencies (dev-dependencies left out), by package name.
    pub(crate) dependencies: Vec<String>,
}

/// A broken rule: the edge and why it is not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The manifest of the depending package, relative to the workspace root.
    pub(crate) manifest: String,
    /// The depending package.
    pub(crate) from: String,
    /// The dependency.
    pub(crate) to: String,
    /// The rule it breaks.
    pub(crate) rule: &'static str,
}

/// The workspace packages of `cargo metadata --format-version 1 --no-deps` output.
pub(crate) fn packages(metadata: &Value, root: &str) -> Result<Vec<Package>, String> {
    let Some(Value::Array(packages)) = metadata.get("packages") else {
        return Err("cargo metadata has no `packages` array".to_owned());
    };
    let mut out = Vec::new();
    for package in packages {
        let name = package.get("name").and_then(Value::as_str).ok_or("a package has no name")?;
        let manifest = package.get("manifest_path").and_then(Value::as_str).unwrap_or_default();
        let manifest = manifest.strip_prefix(root).unwrap_or(manifest).trim_start_matches('/');
        // `publish` is null when publishing is allowed anywhere, `[]` for `publish = false`.
        let published =
            !matches!(package.get("publish"), Some(Value::Array(list)) if list.is_empty());
        let mut dependencies = Vec::new();
        if let Some(Value::Array(deps)) = package.get("dependencies") {
            for dep in deps {
                if dep.get("kind").and_then(Value::as_str) == Some("dev") {
                    continue;
                }
                if let Some(dep_name) = dep.get("name").and_then(Value::as_str)
                    && !dependencies.iter().any(|known| known == dep_name)
                {
                    dependencies.push(dep_name.to_owned());
                }
            }
        }
        out.push(Package {
            name: name.to_owned(),
            manifest: manifest.to_owned(),
            published,
            dependencies,
        });
    }
    Ok(out)
}

/// Every edge between `packages` that breaks a rule.
pub(crate) fn check(packages: &[Package]) -> Vec<Violation> {
    let workspace = |name: &str| packages.iter().find(|p| p.name == name);
    let mut violations = Vec::new();
    for package in packages.iter().filter(|p| p.published) {
        for dep in &package.dependencies {
            let target = workspace(dep);
            let rule = if target.is_some_and(|t| !t.published) {
                Some("a published crate cannot depend on an unpublished one")
            } else if package.name == UMBRELLA {
                None
            } else if package.name == "conc-core" {
                (!CORE_ALLOWED.contains(&dep.as_str()))
                    .then_some("conc-core depends only on metrics, thiserror and futures-core")
            } else if let Some((_, allowed)) = COMPOSITES.iter().find(|(n, _)| *n == package.name) {
                (target.is_some() && !allowed.contains(&dep.as_str())).then_some(
                    "a composite crate depends only on the workspace crates its rule lists",
                )
            } else {
                (target.is_some() && dep != "conc-core").then_some(
                    "a leaf crate depends on conc-core and third-party crates only, never on another workspace crate",
                )
            };
            if let Some(rule) = rule {
                violations.push(Violation {
                    manifest: package.manifest.clone(),
                    from: package.name.clone(),
                    to: dep.clone(),
                    rule,
                });
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, deps: &[&str]) -> Package {
        Package {
            name: name.to_owned(),
            manifest: format!("crates/{name}/Cargo.toml"),
            published: !matches!(name, "conc-test-support" | "xtask" | "benches"),
            dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn workspace(extra: Package) -> Vec<Package> {
        vec![
            package("conc-core", &["metrics", "thiserror"]),
            package("conc-pool", &["conc-core", "tokio"]),
            package("conc-lock", &["conc-core", "tokio", "dashmap"]),
            package("conc-ratelimit", &["conc-core"]),
            package("conc-resilience", &["conc-core"]),
            package("conc-test-support", &["libc"]),
            package("conc-bus", &["conc-core", "conc-lock", "conc-ratelimit", "conc-resilience"]),
            package(UMBRELLA, &["conc-core", "conc-pool", "conc-lock", "conc-bus"]),
            extra,
        ]
    }

    fn edges(violations: &[Violation]) -> Vec<String> {
        violations.iter().map(|v| format!("{} -> {}", v.from, v.to)).collect()
    }

    #[test]
    fn the_intended_layering_passes() {
        assert_eq!(check(&workspace(package("benches", &["conc-pool", "criterion"]))), []);
    }

    #[test]
    fn a_leaf_on_another_leaf_is_named() {
        let violations = check(&workspace(package("conc-fan", &["conc-core", "conc-pool"])));
        assert_eq!(edges(&violations), ["conc-fan -> conc-pool"]);
        assert_eq!(violations[0].manifest, "crates/conc-fan/Cargo.toml");
        assert!(violations[0].rule.starts_with("a leaf crate"));
    }

    #[test]
    fn the_core_takes_no_runtime() {
        let mut packages = workspace(package("conc-fan", &["conc-core"]));
        packages[0].dependencies.extend(["tokio".to_owned(), "dashmap".to_owned()]);
        assert_eq!(edges(&check(&packages)), ["conc-core -> tokio", "conc-core -> dashmap"]);
    }

    #[test]
    fn composites_keep_to_their_list() {
        let dashboard =
            package("conc-dashboard", &["conc-bus", "conc-bus-cli", "conc-pool", "axum"]);
        assert_eq!(edges(&check(&workspace(dashboard))), ["conc-dashboard -> conc-pool"]);
        // Nothing depends on the dashboard, the admin crate included.
        let mut packages = workspace(package("conc-dashboard", &["conc-bus", "conc-bus-cli"]));
        packages.push(package("conc-bus-cli", &["conc-bus", "conc-dashboard"]));
        assert_eq!(edges(&check(&packages)), ["conc-bus-cli -> conc-dashboard"]);
    }

    #[test]
    fn published_crates_do_not_depend_on_unpublished_ones() {
        let fan = package("conc-fan", &["conc-core", "conc-test-support"]);
        let violations = check(&workspace(fan));
        assert_eq!(edges(&violations), ["conc-fan -> conc-test-support"]);
    }

    #[test]
    fn reads_cargo_metadata() {
        let metadata = crate::json::parse(
            r#"{"packages":[
                {"name":"conc-fan","manifest_path":"/srv/repo/crates/conc-fan/Cargo.toml","publish":null,
                 "dependencies":[{"name":"conc-core","kind":null},{"name":"tokio","kind":null},
                                 {"name":"conc-pool","kind":"dev"},{"name":"cc","kind":"build"}]},
                {"name":"xtask","manifest_path":"/srv/repo/xtask/Cargo.toml","publish":[],"dependencies":[]}
            ]}"#,
        )
        .unwrap();
        let packages = packages(&metadata, "/srv/repo").unwrap();
        assert_eq!(packages[0].manifest, "crates/conc-fan/Cargo.toml");
        assert_eq!(packages[0].dependencies, ["conc-core", "tokio", "cc"]);
        assert!(packages[0].published);
        assert!(!packages[1].published);
    }
}
