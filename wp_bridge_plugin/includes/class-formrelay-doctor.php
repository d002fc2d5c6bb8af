<?php
/**
 * REST route formrelay/v1/doctor: `formrelay doctor` checks that this plugin holds its shared secret.
 *
 * The sidecar POSTs a request signed as FR1-doctor "request" (timestamp, nonce,
 * body); the route checks it the way the sidecar checks the plugin's requests
 * (fresh within 5 minutes, the HMAC compared in constant time) and answers
 * {"version": "...", "signature": "sha256=..."}, the FR1-doctor "answer" of the
 * same timestamp and nonce with its version: only a holder of the secret can
 * make it, and the "request"/"answer" field keeps either from passing as the
 * other. The answer also says which seal public key capture seals snapshots to
 * (README "Sealed submissions"): "seal_key", its id, and "seal_public_key", its
 * standard base64 (both '' when sealing is off or the configured key is not 32
 * bytes of base64); they are informational, outside the signature. The route is
 * public (its proof is the signature), changes nothing and reveals nothing but
 * the plugin's version and a public key to a caller holding the secret, so a
 * replay only gets the same answer again. Refusals: 503 formrelay_no_secret,
 * 401 formrelay_stale, 401 formrelay_bad_signature.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Answers the doctor's signed round trip.
 */
final class FormRelay_Doctor {

	const ROUTE           = '/doctor';
	const MAX_AGE_SECONDS = 300;

	/**
	 * Hook the route in.
	 *
	 * @return void
	 */
	public static function register() {
		add_action( 'rest_api_init', array( __CLASS__, 'register_route' ) );
	}

	/**
	 * The `rest_api_init` callback.
	 *
	 * @return void
	 */
	public static function register_route() {
		register_rest_route(
			FormRelay_REST::NAMESPACE_V1,
			self::ROUTE,
			array(
				'methods'             => 'POST',
				'callback'            => array( __CLASS__, 'answer' ),
				// Public on purpose: the request's signature is the check (see answer()).
				'permission_callback' => '__return_true',
			)
		);
	}

	/**
	 * POST doctor: verify the sidecar's signature, answer with the plugin's own.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function answer( WP_REST_Request $request ) {
		$secret = FormRelay_Settings::shared_secret();
		if ( '' === $secret ) {
			return new WP_Error( 'formrelay_no_secret', 'FormRelay Bridge has no shared secret.', array( 'status' => 503 ) );
		}
		$timestamp = (string) $request->get_header( 'x-formrelay-timestamp' );
		$nonce     = (string) $request->get_header( 'x-formrelay-nonce' );
		$signature = trim( (string) $request->get_header( 'x-formrelay-signature' ) );
		if ( ! ctype_digit( $timestamp ) || abs( time() - (int) $timestamp ) > self::MAX_AGE_SECONDS ) {
			return new WP_Error( 'formrelay_stale', 'Missing or stale timestamp.', array( 'status' => 401 ) );
		}
		$expected = FormRelay_Signing::doctor( $secret, 'request', $timestamp, $nonce, (string) $request->get_body() );
		if ( ! preg_match( '/^[0-9a-f]{32}$/', $nonce ) || ! hash_equals( $expected, $signature ) ) {
			return new WP_Error( 'formrelay_bad_signature', 'Bad signature.', array( 'status' => 401 ) );
		}
		return new WP_REST_Response(
			array(
				'version'         => FORMRELAY_BRIDGE_VERSION,
				'signature'       => FormRelay_Signing::doctor( $secret, 'answer', $timestamp, $nonce, FORMRELAY_BRIDGE_VERSION ),
				'seal_key'        => FormRelay_Seal::key_id(),
				'seal_public_key' => FormRelay_Seal::public_key(),
			),
			200
		);
	}
}
