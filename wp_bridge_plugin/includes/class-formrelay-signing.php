<?php
/**
 * The one builder of signed messages to the sidecar (format FR1; sidecar/signing.py is its twin).
 *
 * Every signed request carries three headers:
 *
 *     X-FormRelay-Timestamp: <unix seconds>
 *     X-FormRelay-Nonce:     <32 lower-case hex digits: 128 random bits, new for each request>
 *     X-FormRelay-Signature: sha256=<hex HMAC-SHA256 of the message, keyed with the shared secret>
 *
 * The message is the purpose tag and then each field, every one written as
 * "<decimal byte length>:<bytes>\n", so no field can spill into the next and a
 * notify signature never passes as an admin one:
 *
 *     notify: FR1-notify, timestamp, nonce, body
 *     admin:  FR1-admin, timestamp, nonce, METHOD, path_and_query, user, body
 *     doctor: FR1-doctor, direction ("request" from the sidecar, "answer" from here),
 *             timestamp, nonce, body (the answer's body: the plugin's version)
 *
 * The sidecar accepts each nonce once, so two identical clicks in the same
 * second are two requests, and a captured request cannot be played again.
 * tests/fixtures/signing/*.json hold this class and the sidecar to the same bytes.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Builds and signs the FR1 messages; no WordPress function needed (tested with php-cli).
 */
final class FormRelay_Signing {

	const NOTIFY = 'FR1-notify';
	const ADMIN  = 'FR1-admin';
	const DOCTOR = 'FR1-doctor';

	/**
	 * The signed bytes: the purpose tag, then each field, length-prefixed.
	 *
	 * @param string   $purpose self::NOTIFY or self::ADMIN.
	 * @param string[] $fields  The fields in order (byte strings).
	 * @return string
	 */
	public static function message( $purpose, array $fields ) {
		$out = '';
		foreach ( array_merge( array( $purpose ), $fields ) as $field ) {
			$field = (string) $field;
			$out  .= strlen( $field ) . ':' . $field . "\n";
		}
		return $out;
	}

	/**
	 * The X-FormRelay-Signature value of a message.
	 *
	 * @param string   $secret  The shared secret.
	 * @param string   $purpose self::NOTIFY or self::ADMIN.
	 * @param string[] $fields  The fields in order.
	 * @return string
	 */
	public static function sign( $secret, $purpose, array $fields ) {
		return 'sha256=' . hash_hmac( 'sha256', self::message( $purpose, $fields ), $secret );
	}

	/**
	 * The signature of a notify request.
	 *
	 * @param string $secret    The shared secret.
	 * @param string $timestamp Unix seconds, as sent.
	 * @param string $nonce     The request's nonce, as sent.
	 * @param string $body      The raw body.
	 * @return string
	 */
	public static function notify( $secret, $timestamp, $nonce, $body ) {
		return self::sign( $secret, self::NOTIFY, array( $timestamp, $nonce, $body ) );
	}

	/**
	 * The signature of an admin request.
	 *
	 * @param string $secret         The shared secret.
	 * @param string $timestamp      Unix seconds, as sent.
	 * @param string $nonce          The request's nonce, as sent.
	 * @param string $method         The HTTP method (upper-cased here).
	 * @param string $path_and_query The path, plus '?' and the query string when there is one.
	 * @param string $user           The acting user's login.
	 * @param string $body           The raw body ('' for GET).
	 * @return string
	 */
	public static function admin( $secret, $timestamp, $nonce, $method, $path_and_query, $user, $body ) {
		return self::sign( $secret, self::ADMIN, array( $timestamp, $nonce, strtoupper( $method ), $path_and_query, $user, $body ) );
	}

	/**
	 * The signature of the doctor's round trip (`formrelay doctor` asks, the plugin answers).
	 *
	 * @param string $secret    The shared secret.
	 * @param string $direction 'request' or 'answer'.
	 * @param string $timestamp Unix seconds, as the sidecar sent them.
	 * @param string $nonce     The sidecar's nonce, as sent.
	 * @param string $body      The raw body (the answer's: the plugin's version).
	 * @return string
	 */
	public static function doctor( $secret, $direction, $timestamp, $nonce, $body ) {
		return self::sign( $secret, self::DOCTOR, array( $direction, $timestamp, $nonce, $body ) );
	}

	/**
	 * A fresh nonce: 128 random bits as 32 lower-case hex digits.
	 *
	 * @return string
	 */
	public static function nonce() {
		return bin2hex( random_bytes( 16 ) );
	}
}
