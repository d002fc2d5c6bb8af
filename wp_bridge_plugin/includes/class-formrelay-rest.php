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
 * The whitelists are FormRelay_REST_Params', the requests FormRelay_Relay's,
 * the 503 FormRelay_Unreachable's; this class registers the routes.
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
			'/stats'                                 => array( 'GET', 'get_stats', array() ),
			'/jobs'                                  => array( 'GET', 'get_jobs', array() ),
			'/jobs/retry'                            => array( 'POST', 'post_bulk_retry', array() ),
			'/jobs/(?P<id>\d+)'                      => array( 'GET', 'get_job', array( 'id' => $id ) ),
			'/jobs/(?P<id>\d+)/(?P<action>retry|restart|cancel)' => array( 'POST', 'post_job_action', array( 'id' => $id ) ),
			'/jobs/(?P<id>\d+)/fields'               => array( 'POST', 'post_fields', array( 'id' => $id ) ),
			'/logs'                                  => array( 'GET', 'get_logs', array() ),
			'/resume'                                => array( 'POST', 'post_resume', array() ),
			'/view/(?P<name>overview|jobs|job|logs)' => array( 'GET', 'get_view', array() ),
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
		return FormRelay_Relay::relay( 'GET', 'stats' );
	}

	/**
	 * GET jobs.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function get_jobs( WP_REST_Request $request ) {
		return FormRelay_Relay::relay( 'GET', 'jobs', FormRelay_REST_Params::jobs( $request->get_query_params() ) );
	}

	/**
	 * GET jobs/{id}.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function get_job( WP_REST_Request $request ) {
		return FormRelay_Relay::relay( 'GET', 'jobs/' . absint( $request['id'] ) );
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
		return FormRelay_Relay::relay( 'POST', 'jobs/' . absint( $request['id'] ) . '/' . $action, array(), '{}' );
	}

	/**
	 * POST jobs/retry: {"ids": [n, ...]} or {"all_failed": true, "filter": {...}}.
	 *
	 * @param WP_REST_Request $request The request.
	 * @return WP_REST_Response|WP_Error
	 */
	public static function post_bulk_retry( WP_REST_Request $request ) {
		$body = FormRelay_REST_Params::bulk_retry_body( $request->get_param( 'ids' ), $request->get_param( 'all_failed' ), $request->get_param( 'filter' ), $request->get_param( 'after' ) );
		return FormRelay_Relay::relay( 'POST', 'jobs/retry', array(), (string) wp_json_encode( $body ) );
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
		return FormRelay_Relay::relay( 'POST', 'jobs/' . absint( $request['id'] ) . '/fields', array(), '{}' );
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
		return FormRelay_Relay::relay( 'GET', 'logs', FormRelay_REST_Params::logs( $request->get_query_params() ) );
	}

	/**
	 * POST resume.
	 *
	 * @return WP_REST_Response|WP_Error
	 */
	public static function post_resume() {
		return FormRelay_Relay::relay( 'POST', 'resume', array(), '{}' );
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
		$answer = FormRelay_Relay::fetch_view( $name, FormRelay_REST_Params::view_query( $name, $request->get_query_params() ) );
		if ( is_wp_error( $answer ) ) {
			return $answer;
		}
		if ( isset( $answer['html'] ) ) {
			return new WP_REST_Response( array( 'html' => FormRelay_Fragment::filter( $answer['html'] ) ), $answer['status'] );
		}
		return new WP_REST_Response( $answer['data'], $answer['status'] );
	}

	// ------------------------------------- kept for callers of the former methods.

	/**
	 * The sidecar's query for a view, from the admin page's parameters.
	 *
	 * @see FormRelay_REST_Params::view_query()
	 *
	 * @param string $name   overview|jobs|job|logs.
	 * @param array  $params The page's (unslashed) query parameters.
	 * @return array
	 */
	public static function view_query( $name, array $params ) {
		return FormRelay_REST_Params::view_query( $name, $params );
	}

	/**
	 * Fetch a view from the sidecar.
	 *
	 * @see FormRelay_Relay::fetch_view()
	 *
	 * @param string $name  overview|jobs|job|logs.
	 * @param array  $query From view_query().
	 * @return array|WP_Error
	 */
	public static function fetch_view( $name, array $query ) {
		return FormRelay_Relay::fetch_view( $name, $query );
	}

	/**
	 * The unreachable answer.
	 *
	 * @see FormRelay_Unreachable::error()
	 *
	 * @param string $reason Why (an error from the HTTP library, or the sidecar's status).
	 * @return WP_Error
	 */
	public static function unreachable( $reason ) {
		return FormRelay_Unreachable::error( $reason );
	}

	/**
	 * The last worker heartbeat and how many jobs wait.
	 *
	 * @see FormRelay_Unreachable::queue_state()
	 *
	 * @return array{last_heartbeat: string|null, waiting: int|null}
	 */
	public static function queue_state() {
		return FormRelay_Unreachable::queue_state();
	}
}
