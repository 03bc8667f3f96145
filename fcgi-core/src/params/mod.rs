//! Name-value pairs (spec section 3.4): the wire format, compact storage, and reassembly of
//! pairs split across records.

mod pair;
#[allow(clippy::module_inception)]
mod params;
mod reader;

pub use pair::{
    MAX_PAIR_COMPONENT_LEN, decode_pairs, encode_pair, encoded_pair_len, length_prefix_len,
};
pub use params::Params;
pub use reader::ParamsReader;
