//! A [`Bundle`] as one file: `.tar.gz` (the default; what Linux users and GitHub issues
//! take) or `.zip` (what other systems open with a double click). Every entry sits in one
//! folder named after the time, owner-readable only.

use std::io::{Cursor, Write as _};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Bundle;

/// The archive format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TarGz,
    Zip,
}

impl Format {
    /// From an output name: `.zip` → zip, anything else → tar.gz.
    pub fn from_path(path: &Path) -> Format {
        let name = path.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".zip") {
            Format::Zip
        } else {
            Format::TarGz
        }
    }

    /// From a `?format=` value: `zip`, or `tar.gz`/`tgz`/empty.
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "zip" => Some(Format::Zip),
            "" | "tar.gz" | "tgz" | "targz" => Some(Format::TarGz),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::TarGz => "tar.gz",
            Format::Zip => "zip",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::TarGz => "application/gzip",
            Format::Zip => "application/zip",
        }
    }
}

/// `oceanbridge-diagnostics-20261129T061500Z`: the folder inside and the default file name.
pub fn base_name(now: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(['-', ':'], "");
    format!("oceanbridge-diagnostics-{stamp}")
}

/// The archive's bytes.
pub fn write(bundle: &Bundle, format: Format, now: SystemTime) -> std::io::Result<Vec<u8>> {
    let folder = base_name(now);
    match format {
        Format::TarGz => tar_gz(bundle, &folder, now),
        Format::Zip => zip(bundle, &folder),
    }
}

fn tar_gz(bundle: &Bundle, folder: &str, now: SystemTime) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mtime = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    for (name, bytes) in &bundle.files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{folder}/{name}"), bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}

fn zip(bundle: &Bundle, folder: &str) -> std::io::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o600);
    for (name, bytes) in &bundle.files {
        zip.start_file(format!("{folder}/{name}"), options)
            .map_err(std::io::Error::other)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn bundle() -> Bundle {
        Bundle {
            files: vec![
                ("README.txt".into(), b"hello\n".to_vec()),
                ("capture/capture-1.jsonl".into(), vec![b'x'; 10_000]),
            ],
        }
    }

    #[test]
    fn both_formats_hold_every_file_in_one_folder() {
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        let folder = base_name(now);
        assert_eq!(folder, "oceanbridge-diagnostics-20261118T110640Z");

        let bytes = write(&bundle(), Format::TarGz, now).expect("tar.gz");
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut names = Vec::new();
        for entry in tar.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let mut body = Vec::new();
            entry.read_to_end(&mut body).expect("read");
            names.push((
                entry.path().expect("path").display().to_string(),
                body.len(),
            ));
        }
        assert_eq!(
            names,
            [
                (format!("{folder}/README.txt"), 6),
                (format!("{folder}/capture/capture-1.jsonl"), 10_000)
            ]
        );

        let bytes = write(&bundle(), Format::Zip, now).expect("zip");
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip opens");
        assert_eq!(zip.len(), 2);
        let mut body = String::new();
        zip.by_name(&format!("{folder}/README.txt"))
            .expect("readme")
            .read_to_string(&mut body)
            .expect("read");
        assert_eq!(body, "hello\n");
    }

    #[test]
    fn format_from_name_and_query() {
        assert_eq!(Format::from_path(Path::new("b.ZIP")), Format::Zip);
        assert_eq!(Format::from_path(Path::new("b.tar.gz")), Format::TarGz);
        assert_eq!(Format::from_path(Path::new("bundle")), Format::TarGz);
        assert_eq!(Format::parse("zip"), Some(Format::Zip));
        assert_eq!(Format::parse(""), Some(Format::TarGz));
        assert_eq!(Format::parse("rar"), None);
    }
}
