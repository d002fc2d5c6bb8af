<?php
/**
 * The dashboard's signed requests to the sidecar's admin routes (/admin/v1/...).
 *
 * Every request carries (docs/dashboard.md, "Signing of the sidecar's admin routes"):
 *
 *     X-FormRelay-Timestamp: <unix seconds>
 *     X-FormRelay-Nonce:     <32 hex digits, new for each request>
 *     X-FormRelay-User:      <the acting user's login>
 *     X-FormRelay-Signature: sha256=<hex HMAC-SHA256 of the FR1-admin message (FormRelay_Signing)>
 *
 * `path_and_query` is the path of the URL as sent (the sidecar URL's own
 * path, if any, included) plus `?` and the query string when there is one.
 * The query string is built here with RFC 3986 encoding, which the HTTP
 * library sends unchanged, so what is signed is what goes on the wire.
 *
 * Timeouts are short (connect 2 s, whole request 8 s): a dashboard page waits
 * at most that long for a sidecar that is down or hung, then says so.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Talks to the sidecar's admin API; holds no logic about what the answers mean.
 */
final class FormRelay_Sidecar_Client {

	const PREFIX             = '/admin/v1/';
	const CONNECT_TIMEOUT_MS = 2000;
	const TIMEOUT            = 8; // Seconds, the whole request.
	const MAX_RESPONSE_BYTES = 8388608; // 8 MiB: a view or a page of logs is far smaller.
	const MAX_USER_LENGTH    = 60;

	/**
	 * Whether the http_api_curl hook is registered.
	 *
	 * @var bool
	 */
	private static $hooked = false;

	/**
	 * Send one signed request to the sidecar.
	 *
	 * @param string      $method 'GET' or 'POST'.
	 * @param string      $route  Under /admin/v1/, e.g. 'stats', 'jobs/12/retry', 'view/overview'.
	 * @param array       $query  Query parameters (already whitelisted and sanitized), name => scalar.
	 * @param string|null $body   The raw body of a POST (JSON), null for none.
	 * @param string|null $user   The acting user's login; default the current user's.
	 * @return array{status: int, body: string, content_type: string}|WP_Error A WP_Error when
	 *         no answer came (not configured, connection error, timeout).
	 */
	public static function request( $method, $route, array $query = array(), $body = null, $user = null ) {
		$base   = FormRelay_Settings::sidecar_url();
		$secret = FormRelay_Settings::shared_secret();
		if ( '' === $base || '' === $secret ) {
			return new WP_Error( 'formrelay_not_configured', __( 'the sidecar URL or the shared secret is not set', 'formrelay-bridge' ) );
		}
		$parts = wp_parse_url( $base );
		if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] ) ) {
			return new WP_Error( 'formrelay_not_configured', __( 'the sidecar URL is not valid', 'formrelay-bridge' ) );
		}
		$method = strtoupper( $method );
		$user   = null === $user ? wp_get_current_user()->user_login : (string) $user;
		if ( '' === $user || strlen( $user ) > self::MAX_USER_LENGTH || preg_match( '/[\x00-\x1f\x7f]/', $user ) ) {
			return new WP_Error( 'formrelay_no_user', __( 'no user to act as', 'formrelay-bridge' ) );
		}
		$body = null === $body ? '' : (string) $body;

		$path           = ( isset( $parts['path'] ) ? rtrim( $parts['path'], '/' ) : '' ) . self::PREFIX . ltrim( $route, '/' );
		$query_string   = self::query_string( $query );
		$path_and_query = '' === $query_string ? $path : $path . '?' . $query_string;
		$origin         = strtolower( $parts['scheme'] ) . '://' . $parts['host'] . ( isset( $parts['port'] ) ? ':' . (int) $parts['port'] : '' );
		$timestamp      = (string) time();
		$nonce          = FormRelay_Signing::nonce(); // Two identical clicks in one second are two requests.

		$headers = array(
			'Accept'                => 'application/json, text/html;q=0.9',
			'X-FormRelay-Timestamp' => $timestamp,
			'X-FormRelay-Nonce'     => $nonce,
			'X-FormRelay-User'      => $user,
			'X-FormRelay-Signature' => FormRelay_Signing::admin( $secret, $timestamp, $nonce, $method, $path_and_query, $user, $body ),
		);
		if ( 'GET' !== $method ) {
			$headers['Content-Type'] = 'application/json';
		}

		self::hook_connect_timeout();
		$response = wp_remote_request(
			$origin . $path_and_query,
			array(
				'method'                    => $method,
				'headers'                   => $headers,
				'body'                      => 'GET' === $method ? null : $body,
				'timeout'                   => self::TIMEOUT,
				'redirection'               => 0,
				'httpversion'               => '1.1',
				'user-agent'                => 'FormRelay-Bridge/' . FORMRELAY_BRIDGE_VERSION,
				'limit_response_size'       => self::MAX_RESPONSE_BYTES,
				'formrelay_connect_timeout' => self::CONNECT_TIMEOUT_MS,
			)
		);
		if ( is_wp_error( $response ) ) {
			return $response;
		}
		return array(
			'status'       => (int) wp_remote_retrieve_response_code( $response ),
			'body'         => (string) wp_remote_retrieve_body( $response ),
			'content_type' => strtolower( (string) wp_remote_retrieve_header( $response, 'content-type' ) ),
		);
	}

	/**
	 * A query string, RFC 3986 encoded, in the given order; empty values left out.
	 *
	 * @param array $query Name => scalar.
	 * @return string
	 */
	public static function query_string( array $query ) {
		$pairs = array();
		foreach ( $query as $name => $value ) {
			if ( null === $value || '' === $value || ! is_scalar( $value ) ) {
				continue;
			}
			if ( is_bool( $value ) ) {
				$value = $value ? '1' : '0';
			}
			$pairs[] = rawurlencode( (string) $name ) . '=' . rawurlencode( (string) $value );
		}
		return implode( '&', $pairs );
	}

	/**
	 * Hook the connect timeout into cURL once (WP_Http has no such argument).
	 *
	 * @return void
	 */
	private static function hook_connect_timeout() {
		if ( ! self::$hooked ) {
			add_action( 'http_api_curl', array( __CLASS__, 'set_connect_timeout' ), 10, 2 );
			self::$hooked = true;
		}
	}

	/**
	 * The `http_api_curl` callback: a short connect timeout for this client's requests only.
	 *
	 * @param resource|CurlHandle $handle      The cURL handle.
	 * @param array               $parsed_args The request's arguments.
	 * @return void
	 */
	public static function set_connect_timeout( $handle, $parsed_args ) {
		if ( ! empty( $parsed_args['formrelay_connect_timeout'] ) && defined( 'CURLOPT_CONNECTTIMEOUT_MS' ) ) {
			curl_setopt( $handle, CURLOPT_CONNECTTIMEOUT_MS, (int) $parsed_args['formrelay_connect_timeout'] ); // phpcs:ignore WordPress.WP.AlternativeFunctions.curl_curl_setopt
		}
	}
}
