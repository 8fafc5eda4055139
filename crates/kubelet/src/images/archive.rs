//! Which files in the images dir are image archives, and reading them uncompressed:
//! `*.tar` as is, `*.tar.gz`/`*.tgz` through gzip, `*.tar.zst` through zstd. (`ctr`
//! reads only plain tar on its stdin.)

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression of an image archive named `name`, or `None` when the file is not
/// one (other extensions, and hidden files such as a copy in progress `.x.tar`).
pub fn compression_of(name: &str) -> Option<Compression> {
    if name.starts_with('.') {
        return None;
    }
    if name.ends_with(".tar") {
        Some(Compression::None)
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Some(Compression::Gzip)
    } else if name.ends_with(".tar.zst") {
        Some(Compression::Zstd)
    } else {
        None
    }
}

/// Open `path` and return a reader of the uncompressed tar stream.
pub fn open(path: &Path, compression: Compression) -> std::io::Result<Box<dyn Read + Send>> {
    let file = BufReader::new(File::open(path)?);
    Ok(match compression {
        Compression::None => Box::new(file),
        // Multi-member, as `pigz` and concatenated gzip files produce.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn archive_names() {
        assert_eq!(compression_of("busybox.tar"), Some(Compression::None));
        assert_eq!(compression_of("k3s-airgap.tar.gz"), Some(Compression::Gzip));
        assert_eq!(compression_of("images.tgz"), Some(Compression::Gzip));
        assert_eq!(compression_of("images.tar.zst"), Some(Compression::Zstd));
        assert_eq!(compression_of(".busybox.tar"), None);
        assert_eq!(compression_of("busybox.tar.part"), None);
        assert_eq!(compression_of("notes.txt"), None);
        assert_eq!(compression_of("images.tar.xz"), None);
    }

    #[test]
    fn decompresses_what_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let payload = b"not really a tar, but bytes are bytes".repeat(100);

        let plain = dir.path().join("a.tar");
        std::fs::write(&plain, &payload).unwrap();

        let gzip = dir.path().join("a.tar.gz");
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(&gzip).unwrap(), Default::default());
        encoder.write_all(&payload).unwrap();
        encoder.finish().unwrap();

        let zstd = dir.path().join("a.tar.zst");
        std::fs::write(&zstd, zstd::encode_all(&payload[..], 3).unwrap()).unwrap();

        for (path, compression) in [
            (plain, Compression::None),
            (gzip, Compression::Gzip),
            (zstd, Compression::Zstd),
        ] {
            let mut out = Vec::new();
            open(&path, compression)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, payload, "{}", path.display());
        }
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.tar.gz");
        std::fs::write(&path, b"this is not gzip").unwrap();
        let mut out = Vec::new();
        assert!(open(&path, Compression::Gzip)
            .unwrap()
            .read_to_end(&mut out)
            .is_err());
    }
}
