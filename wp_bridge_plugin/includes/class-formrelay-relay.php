<?php
/**
 * Relaying to the sidecar's admin API: one signed request, its answer classified.
 *
 * A 2xx-4xx JSON answer (a view's 2xx: HTML) is passed on with its status;
 * anything else (no configuration, connection error, timeout, a redirect,
 * 5xx, 401, or an answer that is not JSON) is the unreachable 503
 * (FormRelay_Unreachable::error()).
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Requests to the sidecar for the REST routes and the dashboard page.
 */
final class FormRelay_Relay {

	/**
	 * Relay a JSON route: the sidecar's status and JSON, or the unreachable 503.
	 *
	 * @param string      $method GET or POST.
	 * @param string      $route  Under /admin/v1/.
	 * @param array       $query  Whitelisted query parameters.
	 * @param string|null $body   JSON body of a POST.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function relay( $method, $route, array $query = array(), $body = null ) {
		$answer = self::fetch( $method, $route, $query, $body, false );
		if ( is_wp_error( $answer ) ) {
			return $answer;
		}
		return new WP_REST_Response( $answer['data'], $answer['status'] );
	}

	/**
	 * Fetch a view: array( 'status' => 2xx, 'html' => ... ) or, for a 4xx, array( 'status', 'data' ),
	 * or the unreachable WP_Error.
	 *
	 * @param string $name  overview|jobs|job|logs.
	 * @param array  $query From FormRelay_REST_Params::view_query().
	 * @return array|WP_Error
	 */
	public static function fetch_view( $name, array $query ) {
		return self::fetch( 'GET', 'view/' . sanitize_key( $name ), $query, null, true );
	}

	/**
	 * One request to the sidecar, its answer classified.
	 *
	 * @param string      $method    GET or POST.
	 * @param string      $route     Under /admin/v1/.
	 * @param array       $query     Whitelisted query parameters.
	 * @param string|null $body      JSON body of a POST.
	 * @param bool        $want_html Whether a 2xx answer is HTML (a view) rather than JSON.
	 * @return array|WP_Error array( 'status', 'data' ) or array( 'status', 'html' ); the
	 *         unreachable WP_Error.
	 */
	private static function fetch( $method, $route, array $query, $body, $want_html ) {
		$answer = FormRelay_Sidecar_Client::request( $method, $route, $query, $body );
		if ( is_wp_error( $answer ) ) {
			return FormRelay_Unreachable::error( $answer->get_error_message() );
		}
		$status = $answer['status'];
		$data   = json_decode( $answer['body'], true );
		$error  = is_array( $data ) && isset( $data['error'] ) && is_string( $data['error'] ) ? ': ' . $data['error'] : '';
		if ( $status < 200 || ( $status >= 300 && $status < 400 ) || 401 === $status || $status >= 500 ) {
			return FormRelay_Unreachable::error( sprintf( 'HTTP %d%s', $status, $error ) );
		}
		$is_html = 0 === strpos( $answer['content_type'], 'text/html' );
		if ( $want_html && $is_html ) {
			return array(
				'status' => $status,
				'html'   => $answer['body'],
			);
		}
		// JSON for a JSON route; for a view, JSON only as an error (e.g. 404 no such job).
		if ( ! is_array( $data ) || ( $want_html && $status < 300 ) ) {
			return FormRelay_Unreachable::error( sprintf( 'HTTP %d: not a FormRelay answer', $status ) );
		}
		return array(
			'status' => $status,
			'data'   => $data,
		);
	}
}
