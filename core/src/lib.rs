//! The phone side of Pooya: the encrypted vault, app lock, cards, caps, the
//! activation client and dynamic PINs. Host facilities (keystore, biometrics,
//! network, clock) come in through traits.
