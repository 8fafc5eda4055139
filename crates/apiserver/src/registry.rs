//! The resources this server serves right now: the built-in table plus whatever custom
//! resources are registered at run time. Readers take a cheap snapshot; a change swaps
//! the whole list, so a request sees one consistent table from start to end.

use std::sync::{Arc, RwLock};

use k3rs_core::ResourceDef;

pub type Resources = Arc<Vec<Arc<ResourceDef>>>;

pub struct Registry {
    /// Resources that are always served: the built-in table and the review kinds.
    base: Vec<Arc<ResourceDef>>,
    current: RwLock<Resources>,
}

impl Registry {
    /// The built-in resources only.
    pub fn builtin() -> Registry {
        let base: Vec<Arc<ResourceDef>> = k3rs_core::resource::builtins()
            .iter()
            .cloned()
            .chain(crate::reviews::resource_defs())
            .map(Arc::new)
            .collect();
        Registry {
            current: RwLock::new(Arc::new(base.clone())),
            base,
        }
    }

    pub fn snapshot(&self) -> Resources {
        self.current.read().expect("registry lock").clone()
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.snapshot()
            .iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
            .cloned()
    }

    /// Replace the custom (non-built-in) resources with `custom`.
    pub fn set_custom(&self, custom: Vec<ResourceDef>) {
        let mut defs = self.base.clone();
        defs.extend(custom.into_iter().map(Arc::new));
        *self.current.write().expect("registry lock") = Arc::new(defs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_resources_come_and_go() {
        let registry = Registry::builtin();
        let n = registry.snapshot().len();
        let mut crontab = registry
            .find("", "v1", "configmaps")
            .unwrap()
            .as_ref()
            .clone();
        crontab.group = "stable.example.com".into();
        crontab.plural = "crontabs".into();
        registry.set_custom(vec![crontab]);
        assert!(registry
            .find("stable.example.com", "v1", "crontabs")
            .is_some());
        assert_eq!(registry.snapshot().len(), n + 1);
        registry.set_custom(vec![]);
        assert!(registry
            .find("stable.example.com", "v1", "crontabs")
            .is_none());
        assert_eq!(registry.snapshot().len(), n);
    }
}
