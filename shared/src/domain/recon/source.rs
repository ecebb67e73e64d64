//! Where a settlement report is read from: the PSP's API, a file, or a URL,
//! as a stream of chunks.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Error;
use crate::psp::{PspError, ReportChunks};

use crate::domain::Ctx;

use crate::domain::recon::run::*;

/// Bytes read per chunk from a file.
pub(crate) const FILE_CHUNK: usize = 256 * 1024;

/// The longest a report download may take (a day's report is large).
const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Where the report comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The PSP's settlement API, through its connector.
    Psp,
    /// A file (e.g. a report dropped in a bucket and mounted or downloaded).
    Path(PathBuf),
    /// An `http://` URL (a pre-signed object URL, say).
    Url(String),
}

impl Source {
    pub fn parse(s: &str) -> Source {
        match s {
            "psp" => Source::Psp,
            u if u.starts_with("http://") || u.starts_with("https://") => Source::Url(u.to_owned()),
            p => Source::Path(PathBuf::from(p.strip_prefix("file://").unwrap_or(p))),
        }
    }
}

pub(crate) fn psp_error(e: PspError) -> Error {
    match e {
        PspError::NotFound(_) => Error::NotFound {
            what: "settlement report",
        },
        other => Error::Unavailable(other.to_string()),
    }
}

pub(crate) struct FileChunks(tokio::fs::File);

#[async_trait]
impl ReportChunks for FileChunks {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, PspError> {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0; FILE_CHUNK];
        let n = self
            .0
            .read(&mut buf)
            .await
            .map_err(|e| PspError::Unavailable(format!("reading the report: {e}")))?;
        buf.truncate(n);
        Ok((n > 0).then(|| Bytes::from(buf)))
    }
}

pub(crate) struct UrlChunks(reqwest::Response);

#[async_trait]
impl ReportChunks for UrlChunks {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, PspError> {
        self.0
            .chunk()
            .await
            .map_err(|e| PspError::Unavailable(format!("reading the report: {e}")))
    }
}

/// Open the day's report as a stream of chunks.
pub async fn open_report(
    ctx: &Ctx,
    run: &DayRun,
    src: &Source,
) -> Result<Box<dyn ReportChunks>, Error> {
    match src {
        Source::Psp => {
            let psp = ctx
                .psps
                .get(&run.psp)
                .ok_or(Error::NotFound { what: "PSP" })?;
            psp.settlement_report(run.day).await.map_err(psp_error)
        }
        Source::Path(p) => {
            let f = tokio::fs::File::open(p)
                .await
                .map_err(|e| Error::validation("source", format!("{}: {e}", p.display())))?;
            Ok(Box::new(FileChunks(f)))
        }
        Source::Url(u) => {
            let transport = &ctx.psps.transport;
            transport
                .check_endpoint(u)
                .map_err(|e| Error::validation("source", e.to_string()))?;
            let client = transport
                .client(REPORT_TIMEOUT)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let resp = client
                .get(u.as_str())
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| {
                    Error::Unavailable(format!("fetching the report: {}", e.without_url()))
                })?;
            Ok(Box::new(UrlChunks(resp)))
        }
    }
}
