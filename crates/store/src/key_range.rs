//! Prefix ranges over bytewise-ordered keys, shared by the in-memory index and SQL.

/// The smallest byte string greater than every string starting with `prefix`, or `None`
/// when no such bound exists (empty prefix, or a prefix of only 0xFF bytes).
pub(crate) fn prefix_end(prefix: &str) -> Option<Vec<u8>> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end("/a/"), Some(b"/a0".to_vec()));
        assert_eq!(prefix_end(""), None);
    }
}
