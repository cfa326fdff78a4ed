//! How much key-derivation work a reader does for an archive's passphrase slots.
//!
//! Argon2id's memory and iterations are read from the slot, and the envelope that
//! holds the slots is outside the signature: a mirror can add slots to a validly
//! signed archive. So a reader bounds the work before running the KDF: slots
//! asking for more than [`KdfLimits`] allows are skipped (never derived), and at
//! most [`KdfLimits::passphrase_slots`] passphrase slots are tried. When no slot
//! within the limits opens, the error names the limit a skipped slot reached and
//! how to raise it ([`crate::Error::KdfLimit`]).

use std::fmt;

use super::keyslot::KdfParams;

/// A limit on key-derivation work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfParameter {
    /// Argon2id memory, KiB.
    Memory,
    /// Argon2id passes over memory.
    Iterations,
    /// Passphrase slots tried per open.
    PassphraseSlots,
}

impl KdfParameter {
    /// The CLI flag that raises it.
    pub fn cli_flag(self) -> &'static str {
        match self {
            Self::Memory => "--kdf-max-memory SIZE",
            Self::Iterations => "--kdf-max-iterations N",
            Self::PassphraseSlots => "--kdf-max-slots N",
        }
    }

    /// The Python keyword that raises it.
    pub fn python_option(self) -> &'static str {
        match self {
            Self::Memory => "kdf_max_memory=BYTES",
            Self::Iterations => "kdf_max_iterations=N",
            Self::PassphraseSlots => "kdf_max_slots=N",
        }
    }
}

impl fmt::Display for KdfParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Memory => "Argon2id memory",
            Self::Iterations => "Argon2id iterations",
            Self::PassphraseSlots => "passphrase slots",
        })
    }
}

/// The most key-derivation work a reader does for one archive
/// ([`crate::ReadOptions::kdf_limits`]). The defaults leave room above what hexz
/// writes by default (64 MiB, 3 iterations): 256 MiB, 8 iterations, 4 passphrase
/// slots — at most about 4 × 10 times the default's cost per passphrase offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfLimits {
    /// Largest Argon2id memory, KiB.
    pub memory_kib: u32,
    /// Most Argon2id iterations.
    pub iterations: u32,
    /// Most passphrase slots tried (in envelope order; later ones are skipped).
    pub passphrase_slots: usize,
}

impl Default for KdfLimits {
    fn default() -> Self {
        Self {
            memory_kib: Self::DEFAULT_MEMORY_KIB,
            iterations: Self::DEFAULT_ITERATIONS,
            passphrase_slots: Self::DEFAULT_PASSPHRASE_SLOTS,
        }
    }
}

impl KdfLimits {
    /// Default memory limit: 256 MiB.
    pub const DEFAULT_MEMORY_KIB: u32 = 256 * 1024;
    /// Default iterations limit.
    pub const DEFAULT_ITERATIONS: u32 = 8;
    /// Default number of passphrase slots tried.
    pub const DEFAULT_PASSPHRASE_SLOTS: usize = 4;

    /// The first limit `kdf` exceeds: (parameter, value, limit).
    pub fn exceeded_by(&self, kdf: &KdfParams) -> Option<(KdfParameter, u64, u64)> {
        if kdf.memory_kib > self.memory_kib {
            return Some((
                KdfParameter::Memory,
                kdf.memory_kib.into(),
                self.memory_kib.into(),
            ));
        }
        if kdf.iterations > self.iterations {
            return Some((
                KdfParameter::Iterations,
                kdf.iterations.into(),
                self.iterations.into(),
            ));
        }
        None
    }

    /// These limits, raised as far as needed to admit `kdf` (a writer opening a
    /// chain it builds with its own parameters).
    pub fn admitting(self, kdf: &KdfParams) -> Self {
        Self {
            memory_kib: self.memory_kib.max(kdf.memory_kib),
            iterations: self.iterations.max(kdf.iterations),
            ..self
        }
    }
}

/// The message of [`crate::Error::KdfLimit`] after "key slot N was not tried: ".
pub(crate) fn limit_message(parameter: KdfParameter, value: u64, limit: u64) -> String {
    let what = match parameter {
        KdfParameter::Memory => {
            format!("its {parameter} is {value} KiB, above this reader's limit of {limit} KiB")
        }
        KdfParameter::Iterations => {
            format!("its {parameter} are {value}, above this reader's limit of {limit}")
        }
        KdfParameter::PassphraseSlots => {
            format!("the archive has {value} {parameter} and this reader tries at most {limit}")
        }
    };
    format!(
        "{what}, and no slot within the limits opened. Key slots are not covered by a \
         signature, so a costly slot may have been added by anyone; if you trust this \
         archive, raise the limit (hexz {}, Python {}, ReadOptions::kdf_limits)",
        parameter.cli_flag(),
        parameter.python_option()
    )
}
