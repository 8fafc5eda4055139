//! Container restart back-off (stub; being written).
