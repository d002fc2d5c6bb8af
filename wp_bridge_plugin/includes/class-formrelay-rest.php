<?php
/**
 * REST routes formrelay/v1/...: the dashboard's bridge to the sidecar's admin API.
 *
 * Each route checks the `formrelay_manage` capability (WordPress answers 401
 * to anonymous requests and 403 to users without it), passes only its
 * whitelisted, sanitized parameters on in a signed request
 * (FormRelay_Sidecar_Client), and returns the sidecar's status code and JSON.
 * Changes are POSTs: with cookie authentication WordPress requires the
 * `wp_rest` nonce in X-WP-Nonce for them; application passwords work too.
 *
 * When the sidecar cannot be reached (no configuration, connection error,
 * timeout, a redirect, 5xx, 401, or an answer that is not JSON) the answer is
 * 503 {"code": "formrelay_unreachable", "message": "FormRelay sidecar unreachable",
 * "data": {"status": 503, "last_heartbeat": time|null, "waiting": n, "reason": "..."}}.
 * `last_heartbeat` and `waiting` are the only FormRelay queries PHP runs.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Registers the routes and relays them.
 */
final class FormRelay_REST {

	const NAMESPACE_V1 = 'formrelay/v1';
	const CAPABILITY   = 'formrelay_manage';
	const MAX_REASON   = 300;

	/** Query parameters of the jobs list (sidecar names; the sidecar validates the values). */
	const JOBS_PARAMS = array(
		'status'   => 'key',
		'form_id'  => 'int',
		'search'   => 'text',
		'from'     => 'text',
		'to'       => 'text',
		'orderby'  => 'key',
		'order'    => 'key',
		'page'     => 'int',
		'per_page' => 'int',
	);

	/** Query parameters of the log viewer. */
	const LOGS_PARAMS = array(
		'level'    => 'key',
		'event'    => 'event',
		'job_id'   => 'int',
		'search'   => 'text',
		'from'     => 'text',
		'to'       => 'text',
		'page'     => 'int',
		'per_page' => 'int',
	);

	/** The filter of a bulk "retry all failed". */
	const BULK_FILTER_PARAMS = array(
		'form_id' => 'int',
		'search'  => 'text',
		'from'    => 'text',
		'to'      => 'text',
	);

	/**
	 * Hook the routes in.
	 *
	 * @return void
	 */
	public static function register() {
		add_action( 'rest_api_init', array( __CLASS__, 'register_routes' ) );
	}

	/**
	 * The `rest_api_init` callback.
	 *
	 * @return void
	 */
	public static function register_routes() {
		$id     = array(
			'type'              => 'integer',
			'minimum'           => 1,
			'sanitize_callback' => 'absint',
		);
		$routes = array(
			'/stats'                                     => array( 'GET', 'get_stats', array() ),
			'/jobs'                                      => array( 'GET', 'get_jobs', array() ),
			'/jobs/retry'                                => array( 'POST', 'post_bulk_retry', array() ),
			'/jobs/(?P<id>\d+)'                          => array( 'GET', 'get_job', array( 'id' => $id ) ),
			'/jobs/(?P<id>\d+)/(?P<action>retry|restart|cancel)' => array( 'POST', 'post_job_action', array( 'id' => $id ) ),
			'/jobs/(?P<id>\d+)/fields'                   => array( 'POST', 'post_fields', array( 'id' => $id ) ),
			'/logs'                                      => array( 'GET', 'get_logs', array() ),
			'/resume'                                    => array( 'POST', 'post_resume', array() ),
			'/view/(?P<name>overview|jobs|job|logs)'     => array( 'GET', 'get_view', array() ),
		);
		foreach ( $routes as $route => $spec ) {
			register_rest_route(
				self::NAMESPACE_V1,
				$route,
				array(
					'methods'             => $spec[0],
					'callback'            => array( __CLASS__, $spec[1] ),
					'permission_callback' => array( __CLASS__, 'can_manage' ),
					'args'                => $spec[2],
				)
			);
		}
	}

	/**
	 * Every route's permission check.
	 *
	 * @return bool
	 */
	public static function can_manage() {
		return current_user_can( self::CAPABILITY );
	}

	// ------------------------------------------------------------------ routes.

	/**
	 * GET stats.
	 *
	 * @return WP_REST_Response|WP_Error
	 */
	public static function get_stats() {
		return self::relay( 'GET', 'stats' );
	}

	/**
	 * GET jobs.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function get_jobs( WP_REST_Request $request ) {
		return self::relay( 'GET', 'jobs', self::pick( $request->get_query_params(), self::JOBS_PARAMS ) );
	}

	/**
	 * GET jobs/{id}.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function get_job( WP_REST_Request $request ) {
		return self::relay( 'GET', 'jobs/' . absint( $request['id'] ) );
	}

	/**
	 * POST jobs/{id}/retry|restart|cancel.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function post_job_action( WP_REST_Request $request ) {
		$action = sanitize_key( $request['action'] );
		if ( ! in_array( $action, array( 'retry', 'restart', 'cancel' ), true ) ) {
			return new WP_Error( 'rest_no_route', __( 'No route was found matching the URL and request method.', 'formrelay-bridge' ), array( 'status' => 404 ) );
		}
		return self::relay( 'POST', 'jobs/' . absint( $request['id'] ) . '/' . $action, array(), '{}' );
	}

	/**
	 * POST jobs/retry: {"ids": [n, ...]} or {"all_failed": true, "filter": {...}}.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function post_bulk_retry( WP_REST_Request $request ) {
		$ids  = $request->get_param( 'ids' );
		$body = array();
		if ( is_array( $ids ) ) {
			$clean = array();
			foreach ( $ids as $id ) {
				if ( ( is_int( $id ) && $id > 0 ) || ( is_string( $id ) && ctype_digit( $id ) ) ) {
					$clean[] = absint( $id );
				}
			}
			$body['ids'] = array_values( array_unique( array_filter( $clean ) ) );
		} elseif ( rest_sanitize_boolean( $request->get_param( 'all_failed' ) ) ) {
			$filter              = $request->get_param( 'filter' );
			$body['all_failed']  = true;
			$body['filter']      = (object) self::pick( is_array( $filter ) ? $filter : array(), self::BULK_FILTER_PARAMS );
		}
		return self::relay( 'POST', 'jobs/retry', array(), (string) wp_json_encode( (object) $body ) );
	}

	/**
	 * POST jobs/{id}/fields: the submitted values, for the user who clicked "Reveal".
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function post_fields( WP_REST_Request $request ) {
		// Submitted values: no copy in any cache (WordPress sends its no-cache headers after the callback).
		add_filter( 'nocache_headers', array( __CLASS__, 'no_store' ) );
		return self::relay( 'POST', 'jobs/' . absint( $request['id'] ) . '/fields', array(), '{}' );
	}

	/**
	 * The `nocache_headers` filter while answering with submitted values.
	 *
	 * @param array $headers Header name => value.
	 * @return array
	 */
	public static function no_store( $headers ) {
		$headers['Cache-Control'] = 'no-cache, no-store, must-revalidate, max-age=0, private';
		return $headers;
	}

	/**
	 * GET logs.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function get_logs( WP_REST_Request $request ) {
		return self::relay( 'GET', 'logs', self::pick( $request->get_query_params(), self::LOGS_PARAMS ) );
	}

	/**
	 * POST resume.
	 *
	 * @return WP_REST_Response|WP_Error
	 */
	public static function post_resume() {
		return self::relay( 'POST', 'resume', array(), '{}' );
	}

	/**
	 * GET view/{name}: {"html": "..."}, the view as the admin page prints it.
	 *
	 * Takes the admin page's parameters, as the sidecar's view does (`paged` for the page number).
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function get_view( WP_REST_Request $request ) {
		$name   = sanitize_key( $request['name'] );
		$answer = self::fetch_view( $name, self::view_query( $name, $request->get_query_params() ) );
		if ( is_wp_error( $answer ) ) {
			return $answer;
		}
		if ( isset( $answer['html'] ) ) {
			return new WP_REST_Response( array( 'html' => FormRelay_Dashboard::filter_fragment( $answer['html'] ) ), $answer['status'] );
		}
		return new WP_REST_Response( $answer['data'], $answer['status'] );
	}

	// ------------------------------------------------------ shared with the page.

	/**
	 * The sidecar's query for a view, from the admin page's parameters.
	 *
	 * The admin page's own `page` parameter is the menu slug, so the views
	 * number their pages with `paged` (WordPress' name for it), as the
	 * sidecar's view routes take it; the JSON routes take `page`.
	 *
	 * @param string $name   overview|jobs|job|logs.
	 * @param array  $params The page's (unslashed) query parameters.
	 * @return array
	 */
	public static function view_query( $name, array $params ) {
		switch ( $name ) {
			case 'jobs':
				return self::pick( $params, self::paged( self::JOBS_PARAMS ) );
			case 'logs':
				return self::pick( $params, self::paged( self::LOGS_PARAMS ) );
			case 'job':
				return self::pick( $params, array( 'id' => 'int' ) );
			default:
				return array();
		}
	}

	/**
	 * A JSON route's parameters as its view takes them: `paged` in the place of `page`.
	 *
	 * @param array $spec Name => kind.
	 * @return array
	 */
	private static function paged( array $spec ) {
		$out = array();
		foreach ( $spec as $name => $kind ) {
			$out[ 'page' === $name ? 'paged' : $name ] = $kind;
		}
		return $out;
	}

	/**
	 * Fetch a view: array( 'status' => 2xx, 'html' => ... ) or, for a 4xx, array( 'status', 'data' ),
	 * or the unreachable WP_Error.
	 *
	 * @param string $name  overview|jobs|job|logs.
	 * @param array  $query From view_query().
	 * @return array|WP_Error
	 */
	public static function fetch_view( $name, array $query ) {
		return self::fetch( 'GET', 'view/' . sanitize_key( $name ), $query, null, true );
	}

	/**
	 * The unreachable answer: 503, the last heartbeat and the number of waiting submissions.
	 *
	 * @param string $reason Why (an error from the HTTP library, or the sidecar's status).
	 * @return WP_Error
	 */
	public static function unreachable( $reason ) {
		$state = self::queue_state();
		return new WP_Error(
			'formrelay_unreachable',
			'FormRelay sidecar unreachable',
			array(
				'status'         => 503,
				'last_heartbeat' => $state['last_heartbeat'],
				'waiting'        => $state['waiting'],
				'reason'         => self::shorten( $reason ),
			)
		);
	}

	/**
	 * The two queries PHP runs: the newest worker heartbeat and how many jobs wait.
	 *
	 * @return array{last_heartbeat: string|null, waiting: int|null} The heartbeat as UTC
	 *         ISO 8601 (2026-12-01T13:05:00.123), null when no worker was ever seen; waiting
	 *         null only when the table cannot be read.
	 */
	public static function queue_state() {
		global $wpdb;
		$workers  = $wpdb->prefix . 'formrelay_workers';
		$jobs     = $wpdb->prefix . 'formrelay_jobs';
		$suppress = $wpdb->suppress_errors( true );
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.DirectDatabaseQuery -- the plugin's own tables; never cached: this is live state.
		$last    = $wpdb->get_var( $wpdb->prepare( "SELECT MAX(last_seen) FROM `{$workers}` LIMIT %d", 1 ) );
		$waiting = $wpdb->get_var( $wpdb->prepare( "SELECT COUNT(*) FROM `{$jobs}` WHERE status IN (%s, %s, %s)", 'pending', 'retrying', 'processing' ) );
		// phpcs:enable
		$wpdb->suppress_errors( $suppress );
		return array(
			'last_heartbeat' => is_string( $last ) && '' !== $last ? str_replace( ' ', 'T', $last ) : null,
			'waiting'        => null === $waiting ? null : (int) $waiting,
		);
	}

	// ----------------------------------------------------------------- helpers.

	/**
	 * Relay a JSON route: the sidecar's status and JSON, or the unreachable 503.
	 *
	 * @param string      $method GET or POST.
	 * @param string      $route  Under /admin/v1/.
	 * @param array       $query  Whitelisted query parameters.
	 * @param string|null $body   JSON body of a POST.
	 * @return WP_REST_Response|WP_Error
	 */
	private static function relay( $method, $route, array $query = array(), $body = null ) {
		$answer = self::fetch( $method, $route, $query, $body, false );
		if ( is_wp_error( $answer ) ) {
			return $answer;
		}
		return new WP_REST_Response( $answer['data'], $answer['status'] );
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
			return self::unreachable( $answer->get_error_message() );
		}
		$status = $answer['status'];
		$data   = json_decode( $answer['body'], true );
		$error  = is_array( $data ) && isset( $data['error'] ) && is_string( $data['error'] ) ? ': ' . $data['error'] : '';
		if ( $status < 200 || ( $status >= 300 && $status < 400 ) || 401 === $status || $status >= 500 ) {
			return self::unreachable( sprintf( 'HTTP %d%s', $status, $error ) );
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
			return self::unreachable( sprintf( 'HTTP %d: not a FormRelay answer', $status ) );
		}
		return array(
			'status' => $status,
			'data'   => $data,
		);
	}

	/**
	 * The whitelisted parameters, sanitized, in the whitelist's order.
	 *
	 * Numbers are passed as digits; anything else given for a number is
	 * passed as sanitized text, so that the sidecar's 400 names the parameter.
	 *
	 * @param array $params Candidate parameters (unslashed).
	 * @param array $spec   Name => 'key'|'event'|'int'|'text'.
	 * @return array
	 */
	private static function pick( array $params, array $spec ) {
		$out = array();
		foreach ( $spec as $name => $kind ) {
			if ( ! isset( $params[ $name ] ) || ! is_scalar( $params[ $name ] ) ) {
				continue;
			}
			$value = trim( (string) $params[ $name ] );
			if ( 'key' === $kind ) {
				$value = sanitize_key( $value );
			} elseif ( 'event' === $kind ) {
				$value = preg_replace( '/[^a-z0-9_.\-]/', '', strtolower( $value ) );
			} elseif ( 'int' === $kind && ctype_digit( $value ) ) {
				$value = (string) absint( $value );
			} else {
				$value = sanitize_text_field( $value );
			}
			if ( '' !== $value ) {
				$out[ $name ] = $value;
			}
		}
		return $out;
	}

	/**
	 * A reason cut to a sensible length, without control characters.
	 *
	 * @param string $reason Text.
	 * @return string
	 */
	private static function shorten( $reason ) {
		$reason = trim( preg_replace( '/[\x00-\x1f\x7f]+/', ' ', (string) $reason ) );
		return mb_strlen( $reason ) > self::MAX_REASON ? mb_substr( $reason, 0, self::MAX_REASON ) . '...' : $reason;
	}
}
