//! What one client can make a bridge do: floods of control frames, slow transfers that still
//! move, and endings without a Close.
