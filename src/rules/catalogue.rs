//! The rule registry. Rules are added here family by family.

use super::Rule;

/// Every rule, in catalogue order.
pub fn registry() -> &'static [&'static dyn Rule] {
    &[]
}
