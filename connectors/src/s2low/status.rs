//! S²LOW's transaction status codes, and what they mean for a dossier.

use std::fmt;

/// A status code of an S²LOW transaction (Actes or Hélios).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S2lowStatus {
    /// -1: the platform met an error (the message says which).
    Error,
    /// 0: cancelled.
    Cancelled,
    /// 1: posted on the platform.
    Posted,
    /// 2: waiting for transmission.
    WaitingTransmission,
    /// 3: transmitted to the prefecture or the DGFiP.
    Transmitted,
    /// 4: acknowledged (ARActe received; Hélios: acquitted).
    Acknowledged,
    /// 5: validated.
    Validated,
    /// 6: refused.
    Refused,
    /// 7: Hélios: being processed.
    Processing,
    /// 8: Hélios: information available (the `PES_Acquit` can be downloaded).
    InformationAvailable,
    /// Any other code.
    Other(i32),
}

impl S2lowStatus {
    /// The status of a code.
    pub fn from_code(code: i32) -> Self {
        match code {
            -1 => Self::Error,
            0 => Self::Cancelled,
            1 => Self::Posted,
            2 => Self::WaitingTransmission,
            3 => Self::Transmitted,
            4 => Self::Acknowledged,
            5 => Self::Validated,
            6 => Self::Refused,
            7 => Self::Processing,
            8 => Self::InformationAvailable,
            other => Self::Other(other),
        }
    }

    /// The code.
    pub fn code(self) -> i32 {
        match self {
            Self::Error => -1,
            Self::Cancelled => 0,
            Self::Posted => 1,
            Self::WaitingTransmission => 2,
            Self::Transmitted => 3,
            Self::Acknowledged => 4,
            Self::Validated => 5,
            Self::Refused => 6,
            Self::Processing => 7,
            Self::InformationAvailable => 8,
            Self::Other(code) => code,
        }
    }

    /// What the status means for the dossier.
    pub fn state(self) -> TransmissionState {
        match self {
            Self::Posted | Self::WaitingTransmission | Self::Other(_) => TransmissionState::Waiting,
            Self::Transmitted | Self::Processing => TransmissionState::Transmitted,
            Self::Acknowledged | Self::Validated | Self::InformationAvailable => {
                TransmissionState::Acknowledged
            }
            Self::Refused | Self::Error => TransmissionState::Refused,
            Self::Cancelled => TransmissionState::Cancelled,
        }
    }
}

impl fmt::Display for S2lowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self {
            Self::Error => "erreur",
            Self::Cancelled => "annulé",
            Self::Posted => "posté",
            Self::WaitingTransmission => "en attente de transmission",
            Self::Transmitted => "transmis",
            Self::Acknowledged => "acquittement reçu",
            Self::Validated => "validé",
            Self::Refused => "refusé",
            Self::Processing => "en traitement",
            Self::InformationAvailable => "information disponible",
            Self::Other(_) => "statut inconnu",
        };
        write!(f, "{label} ({})", self.code())
    }
}

/// Where a transmission stands, whatever the transport (S²LOW or drop folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmissionState {
    /// Not yet sent on by the platform.
    Waiting,
    /// Sent to the recipient, no answer yet.
    Transmitted,
    /// The recipient acknowledged or accepted it.
    Acknowledged,
    /// The recipient or the platform refused it.
    Refused,
    /// Cancelled.
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_map_to_states() {
        for code in -1..=30 {
            assert_eq!(S2lowStatus::from_code(code).code(), code);
        }
        assert_eq!(
            S2lowStatus::from_code(4).state(),
            TransmissionState::Acknowledged
        );
        assert_eq!(
            S2lowStatus::from_code(8).state(),
            TransmissionState::Acknowledged
        );
        assert_eq!(
            S2lowStatus::from_code(3).state(),
            TransmissionState::Transmitted
        );
        assert_eq!(
            S2lowStatus::from_code(-1).state(),
            TransmissionState::Refused
        );
        assert_eq!(
            S2lowStatus::from_code(6).state(),
            TransmissionState::Refused
        );
        assert_eq!(
            S2lowStatus::from_code(0).state(),
            TransmissionState::Cancelled
        );
        assert_eq!(
            S2lowStatus::from_code(1).state(),
            TransmissionState::Waiting
        );
    }
}
