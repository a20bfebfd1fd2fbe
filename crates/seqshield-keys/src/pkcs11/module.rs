//! The PKCS#11 module: one initialised context per module path for the
//! life of the process, token lookup by label, and user login.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use crate::KeyError;

/// Contexts by module path. PKCS#11 allows one `C_Initialize` per process
/// (PKCS#11 v2.40 §5.4), and cryptoki calls `C_Finalize` when the last
/// clone of a context drops, which would pull the module out from under
/// every other key; keeping one clone here means it never drops.
static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

/// The process-wide, initialised context for the PKCS#11 module at
/// `module`. Use it for any other PKCS#11 work in the same process (listing
/// tokens, inspecting objects): a second context for the same module would
/// find it already initialised, and finalise it when dropped.
///
/// The module is loaded and `C_Initialize`d on first use and stays so until
/// the process exits. Modules such as SoftHSM2 read their configuration
/// (`SOFTHSM2_CONF`) at that moment.
pub fn context(module: &Path) -> Result<Pkcs11, KeyError> {
    let mut contexts = CONTEXTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, ctx)) = contexts.iter().find(|(path, _)| path == module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(pkcs11_err("loading the module"))?;
    match ctx.initialize(CInitializeArgs::OsThreads) {
        // Someone else in this process (another path to the same library)
        // initialised it already; that is fine as long as nobody finalises.
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(pkcs11_err("C_Initialize")(e)),
    }
    contexts.push((module.to_owned(), ctx.clone()));
    Ok(ctx)
}

/// The token's slot and serial number; exactly one token must carry `label`.
pub(crate) fn find_token(ctx: &Pkcs11, module: &Path, label: &str) -> Result<(Slot, String), KeyError> {
    let mut found = Vec::new();
    for slot in ctx.get_slots_with_token().map_err(pkcs11_err("C_GetSlotList"))? {
        let info = ctx.get_token_info(slot).map_err(pkcs11_err("C_GetTokenInfo"))?;
        if info.label().trim_end() == label {
            found.push((slot, info.serial_number().trim_end().to_owned()));
        }
    }
    if found.len() != 1 {
        return Err(KeyError::TokenLabel { module: module.to_owned(), label: label.to_owned(), count: found.len() });
    }
    Ok(found.remove(0))
}

/// Opens a session (read-write to create objects) and logs the user in.
/// An application-wide login that another session of this process already
/// holds is accepted (PKCS#11 login state is per application, not per
/// session).
pub(crate) fn login(ctx: &Pkcs11, slot: Slot, token: &str, pin: &str, read_write: bool) -> Result<Session, KeyError> {
    let session = if read_write { ctx.open_rw_session(slot) } else { ctx.open_ro_session(slot) }
        .map_err(pkcs11_err("C_OpenSession"))?;
    let pin = AuthPin::new(pin.to_owned());
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(Error::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _)) => {
            Err(KeyError::WrongPin { token: token.to_owned() })
        }
        Err(e) => Err(pkcs11_err("C_Login")(e)),
    }
}

/// Maps a cryptoki error to [`KeyError::Pkcs11`].
pub(crate) fn pkcs11_err(op: &'static str) -> impl FnOnce(Error) -> KeyError {
    move |source| KeyError::Pkcs11 { op, source }
}
