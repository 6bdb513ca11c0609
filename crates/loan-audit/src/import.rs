//! Import: an exported history written into an embedded SQLite store, so that the audit
//! commands (`--embedded`) and the embedded mode read it as a log instead of a file.
//!
//! The export is verified first, by the very function `loan audit verify` runs
//! ([`verify_export`]): a tampered export is refused with the finding `verify` prints,
//! and nothing is written. Then every commit is written at its original position with
//! its exact bytes, in one transaction ([`SqliteStore::begin_import`]). While writing, the
//! chains and the file hash are checked again against the manifest, so a file changed
//! between the two readings is refused as well and the transaction rolled back. The store
//! refuses positions, command ids and aggregates it already holds
//! ([`loan_store::StoreError::ImportRefused`]): importing twice changes nothing.
//!
//! Data keys: an export carries none (only the encrypted values, as stored). Sensitive
//! fields of an imported history read masked; showing them in clear needs the master
//! key and the original key store (the live stream's key bucket, `--nats`).

use std::path::Path;

use loan_store::chain::ChainSummary;
use loan_store::sqlite::SqliteStore;
use sha2::{Digest, Sha256};

use crate::AuditError;
use crate::export::Manifest;
use crate::log::LogReader;
use crate::verify::{
    Finding, Verification, compare, tampered_manifest, verifier_for, verify_export,
};

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Every commit written: what was imported (as verified).
    Imported(ChainSummary),
    /// Nothing written: the export is not what its chains and manifest say.
    Refused(Verification),
}

/// Verifies the export at `export_path` against `manifest`, then writes it into `store`.
pub async fn import_export(
    export_path: &Path,
    manifest: &Manifest,
    store: &SqliteStore,
) -> Result<ImportOutcome, AuditError> {
    let verification = verify_export(export_path, manifest).await?;
    if !verification.intact {
        return Ok(ImportOutcome::Refused(verification));
    }
    write_verified(export_path, manifest, store).await
}

/// As [`import_export`], into the store file at `store_path`, which is opened (created
/// if missing) only once the export has verified: a refused export leaves no file behind.
pub async fn import_into(
    export_path: &Path,
    manifest: &Manifest,
    store_path: &Path,
) -> Result<ImportOutcome, AuditError> {
    let verification = verify_export(export_path, manifest).await?;
    if !verification.intact {
        return Ok(ImportOutcome::Refused(verification));
    }
    let store = SqliteStore::open(store_path).await?;
    write_verified(export_path, manifest, &store).await
}

/// Writes a verified export, checking it again as it is read.
async fn write_verified(
    export_path: &Path,
    manifest: &Manifest,
    store: &SqliteStore,
) -> Result<ImportOutcome, AuditError> {
    let mut verifier = match verifier_for(manifest) {
        Ok(verifier) => verifier,
        Err(reason) => return Ok(ImportOutcome::Refused(tampered_manifest(reason))),
    };
    let mut import = store.begin_import().await?;
    let mut reader = LogReader::open_export(export_path)?.with_checkpoints();
    let mut file_hash = Sha256::new();
    let mut raw = Vec::new();
    let mut commits = 0u64;
    let changed = |commits: u64, summary: ChainSummary, reason: String| {
        ImportOutcome::Refused(Verification {
            intact: false,
            commits_checked: commits,
            summary,
            first_broken_link: Some(Finding {
                position: None,
                aggregate: None,
                line: None,
                reason: format!("the export changed while it was imported: {reason}"),
            }),
        })
    };
    loop {
        raw.clear();
        let entry = match reader.next_with_raw(Some(&mut raw)).await {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(AuditError::Format { line, reason, .. }) => {
                return Ok(changed(
                    commits,
                    verifier.finish(),
                    format!("line {line}: {reason}"),
                ));
            }
            Err(other) => return Err(other),
        };
        file_hash.update(&raw);
        if entry.is_checkpoint() {
            if let Err(broken) = verifier.push_checkpoint(entry.position, &entry.bytes) {
                return Ok(changed(commits, verifier.finish(), broken.to_string()));
            }
            import.push_checkpoint(entry.position, &entry.bytes).await?;
            continue;
        }
        if let Err(broken) = verifier.push(entry.position, &entry.bytes) {
            return Ok(changed(commits, verifier.finish(), broken.to_string()));
        }
        import.push(entry.position, &entry.bytes).await?;
        commits += 1;
    }
    let summary = verifier.finish();
    if let Some(finding) = compare(manifest, &summary, &hex::encode(file_hash.finalize())) {
        return Ok(changed(commits, summary, finding.to_string()));
    }
    import.commit().await?;
    Ok(ImportOutcome::Imported(summary))
}
