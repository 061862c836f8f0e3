//! The bank side of Pooya: enrollment at the ATM, activation, verification of
//! dynamic PINs, the SMS channel and Harim requests.
