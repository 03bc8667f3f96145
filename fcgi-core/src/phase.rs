//! Which request stream comes next, by role (spec 6.2–6.4). Both sides follow the same
//! order: the web server sends `PARAMS`, then `STDIN` (Responder, Filter), then `DATA`
//! (Filter only); the application receives them in that order.

use crate::record::Role;

/// The stream of a request that is being sent / expected next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Params,
    Stdin,
    Data,
    Done,
}

impl Phase {
    /// The stream that follows `ended` for a request in `role`.
    pub(crate) fn after(role: Role, ended: Phase) -> Phase {
        match ended {
            Phase::Params if role.reads_stdin() => Phase::Stdin,
            Phase::Stdin if role.reads_data() => Phase::Data,
            _ => Phase::Done,
        }
    }
}
