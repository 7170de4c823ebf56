//! Placeholder drives: Firecracker cannot add a drive after boot, so
//! `create` registers empty ones and an attach swaps a slot's backing file.

use std::path::PathBuf;

use super::{api, layout};

/// The `PUT /drives/{id}` body of empty slot `slot`.
pub fn placeholder(slot: usize) -> api::Drive {
    api::Drive {
        drive_id: layout::slot_id(slot),
        path_on_host: layout::placeholder_path(slot),
        is_root_device: false,
        is_read_only: false,
    }
}

/// The lowest slot no attached drive occupies.
pub fn free_slot(attached: &[(String, PathBuf)], slots: usize) -> Option<usize> {
    (0..slots).find(|slot| {
        !attached
            .iter()
            .any(|(_, path)| layout::slot_of_attached(path) == Some(*slot))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_slots_skip_occupied_ones() {
        let attached = vec![
            ("a".to_owned(), PathBuf::from(layout::attached_path(0, "a"))),
            ("b".to_owned(), PathBuf::from(layout::attached_path(2, "b"))),
        ];
        assert_eq!(free_slot(&attached, 3), Some(1));
        assert_eq!(free_slot(&attached[..1], 1), None);
        assert_eq!(free_slot(&[], 0), None);
    }
}
