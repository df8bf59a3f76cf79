//! Refusal codes: the one list of the stable, snake_case `code`s that clients see in HTTP error
//! bodies, WebSocket `error` frames and command refusals, each with its one HTTP status.
//!
//! A new refusal is a new variant here: the exhaustive `http_status` match makes its author
//! choose its status, and a test walks every variant, so no code can silently become a 400.

crate::text_enum! {
    /// Why a request was refused. Nothing was changed by a refused request.
    pub enum Refusal {
        // ----- malformed requests (400) -----
        MalformedJson,
        UnknownField,
        UnknownType,
        MissingField,
        InvalidField,
        InvalidPath,
        InvalidQuery,
        /// A WebSocket frame that is valid JSON but not a valid client frame.
        InvalidFrame,
        InvalidClientMsgId,
        InvalidMembers,
        MessageEmpty,
        NameTooLong,
        DescriptionTooLong,
        InvalidUrl,
        TooManyMembers,
        InvalidUsername,
        InvalidPassword,
        InvalidMode,
        InvalidTenant,
        NotAWebsocket,
        InvalidEmail,
        InvalidPhone,
        /// A text field over its documented length.
        FieldTooLong,
        /// The LINE profile's status line shows the company name; it is not editable.
        StatusMessageNotEditable,
        /// A sticker LINE users cannot be sent, posted into a room with LINE users.
        StickerNotSendable,
        // ----- who is asking (401) -----
        Unauthorized,
        TokenExpired,
        InvalidToken,
        InvalidCredentials,
        /// A LINE webhook whose `x-line-signature` is missing or does not match its body.
        InvalidSignature,
        // ----- not allowed (403) -----
        Forbidden,
        NotGroupMaster,
        RecallNotAllowed,
        /// None of the requested members may join.
        NotAuthorized,
        LineNotAuthorized,
        ExternalNotAuthorized,
        /// Calls are not available in rooms with LINE users.
        CallsUnavailableWithLine,
        // ----- not there, or not visible to the caller (404) -----
        NotFound,
        RoomNotFound,
        MemberNotFound,
        MessageNotFound,
        UserNotFound,
        TenantNotFound,
        TrustNotFound,
        ContactNotFound,
        /// No LINE channel is bound under this id (or to this member).
        ChannelNotFound,
        /// The room has no call of this id (it ended, or never was).
        CallNotFound,
        // ----- conflicts with the current state (409) -----
        NotAllowedForKind,
        AlreadyRecalled,
        UserExists,
        /// The member may use LINE but no LINE Official Account is bound to them yet.
        LineAccountNotSetUp,
        /// The LINE channel id is bound to another member.
        ChannelExists,
        /// A LINE room with no LINE participant left (the LINE user unfollowed the member's
        /// account, or the account left the LINE group): its history stays, nothing can be sent.
        LineRoomClosed,
        /// An undelivered message that cannot be sent again as it is (LINE could never take it,
        /// or nothing reaches its LINE user).
        NotResendable,
        /// The room has a call already: join it, or wait for it to end.
        CallInProgress,
        /// Another device of the caller answered the call.
        CallAnsweredElsewhere,
        /// Only a participant's device in the call may do this, and signals go only to
        /// participants.
        NotInCall,
        /// The call has as many participants as it may.
        CallFull,
        // ----- no longer there (410) -----
        /// A signed media link past its expiry.
        LinkExpired,
        // ----- size and type of the payload (413, 415) -----
        MessageTooLong,
        PayloadTooLarge,
        UnsupportedMediaType,
        // ----- rate (429) -----
        RateLimited,
        /// A WebSocket session has as many frames in progress as it may: wait for answers.
        TooManyInFlight,
        // ----- the server's side (500, 503) -----
        Internal,
        /// A part of the API that is not built yet.
        NotImplemented,
        Unavailable,
        AuthzUnavailable,
        /// The room did not answer in time; repeating with the same idempotency key is safe.
        CommandTimeout,
    }
}

impl Refusal {
    /// The HTTP status of this refusal, wherever it is answered over HTTP.
    pub fn http_status(self) -> u16 {
        use Refusal::*;
        match self {
            MalformedJson
            | UnknownField
            | UnknownType
            | MissingField
            | InvalidField
            | InvalidPath
            | InvalidQuery
            | InvalidFrame
            | InvalidClientMsgId
            | InvalidMembers
            | MessageEmpty
            | NameTooLong
            | DescriptionTooLong
            | InvalidUrl
            | TooManyMembers
            | InvalidUsername
            | InvalidPassword
            | InvalidMode
            | InvalidTenant
            | NotAWebsocket
            | InvalidEmail
            | InvalidPhone
            | FieldTooLong
            | StatusMessageNotEditable
            | StickerNotSendable => 400,
            Unauthorized | TokenExpired | InvalidToken | InvalidCredentials | InvalidSignature => 401,
            Forbidden
            | NotGroupMaster
            | RecallNotAllowed
            | NotAuthorized
            | LineNotAuthorized
            | ExternalNotAuthorized
            | CallsUnavailableWithLine => 403,
            NotFound | RoomNotFound | MemberNotFound | MessageNotFound | UserNotFound | TenantNotFound
            | TrustNotFound | ContactNotFound | ChannelNotFound | CallNotFound => 404,
            NotAllowedForKind
            | AlreadyRecalled
            | UserExists
            | LineAccountNotSetUp
            | ChannelExists
            | LineRoomClosed
            | NotResendable
            | CallInProgress
            | CallAnsweredElsewhere
            | NotInCall
            | CallFull => 409,
            LinkExpired => 410,
            MessageTooLong | PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            RateLimited | TooManyInFlight => 429,
            Internal => 500,
            NotImplemented => 501,
            Unavailable | AuthzUnavailable | CommandTimeout => 503,
        }
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    /// Every code: its wire name is its serde name, it parses back, and its status is the one
    /// this table gives. A new variant fails here until it is added to the table.
    #[test]
    fn every_refusal_has_its_status_and_wire_name() {
        let table: &[(&str, u16)] = &[
            ("malformed_json", 400),
            ("unknown_field", 400),
            ("unknown_type", 400),
            ("missing_field", 400),
            ("invalid_field", 400),
            ("invalid_path", 400),
            ("invalid_query", 400),
            ("invalid_frame", 400),
            ("invalid_client_msg_id", 400),
            ("invalid_members", 400),
            ("message_empty", 400),
            ("name_too_long", 400),
            ("description_too_long", 400),
            ("invalid_url", 400),
            ("too_many_members", 400),
            ("invalid_username", 400),
            ("invalid_password", 400),
            ("invalid_mode", 400),
            ("invalid_tenant", 400),
            ("not_a_websocket", 400),
            ("invalid_email", 400),
            ("invalid_phone", 400),
            ("field_too_long", 400),
            ("status_message_not_editable", 400),
            ("sticker_not_sendable", 400),
            ("unauthorized", 401),
            ("token_expired", 401),
            ("invalid_token", 401),
            ("invalid_credentials", 401),
            ("invalid_signature", 401),
            ("forbidden", 403),
            ("not_group_master", 403),
            ("recall_not_allowed", 403),
            ("not_authorized", 403),
            ("line_not_authorized", 403),
            ("external_not_authorized", 403),
            ("calls_unavailable_with_line", 403),
            ("not_found", 404),
            ("room_not_found", 404),
            ("member_not_found", 404),
            ("message_not_found", 404),
            ("user_not_found", 404),
            ("tenant_not_found", 404),
            ("trust_not_found", 404),
            ("contact_not_found", 404),
            ("channel_not_found", 404),
            ("call_not_found", 404),
            ("not_allowed_for_kind", 409),
            ("already_recalled", 409),
            ("user_exists", 409),
            ("line_account_not_set_up", 409),
            ("channel_exists", 409),
            ("line_room_closed", 409),
            ("not_resendable", 409),
            ("call_in_progress", 409),
            ("call_answered_elsewhere", 409),
            ("not_in_call", 409),
            ("call_full", 409),
            ("link_expired", 410),
            ("message_too_long", 413),
            ("payload_too_large", 413),
            ("unsupported_media_type", 415),
            ("rate_limited", 429),
            ("too_many_in_flight", 429),
            ("internal", 500),
            ("not_implemented", 501),
            ("unavailable", 503),
            ("authz_unavailable", 503),
            ("command_timeout", 503),
        ];
        let all: Vec<Refusal> = Refusal::iter().collect();
        assert_eq!(all.len(), table.len(), "every variant is in the table, once");
        for refusal in all {
            let wire = serde_json::to_value(refusal).unwrap();
            let name = wire.as_str().unwrap();
            assert_eq!(name, refusal.as_str());
            assert_eq!(serde_json::from_value::<Refusal>(wire.clone()).unwrap(), refusal);
            assert_eq!(name.parse::<Refusal>().unwrap(), refusal);
            let expected = table.iter().find(|(code, _)| *code == name).map(|(_, status)| *status);
            assert_eq!(Some(refusal.http_status()), expected, "status of {name}");
        }
    }

    #[test]
    fn unknown_codes_do_not_parse() {
        assert!(serde_json::from_str::<Refusal>("\"refused\"").is_err());
        assert!("something_new".parse::<Refusal>().is_err());
    }
}
